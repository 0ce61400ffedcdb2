#!/usr/bin/env bash
# On the GPU machine: `vlmd serve` with the 2B-shaped model in bfloat16 on CUDA, driven over
# gRPC by vlmd_load with 1, 8, 32 and 64 concurrent streaming clients (448x112 image per
# request, 128 new tokens, end-of-sequence ignored), then the HF reference at the same batch
# sizes in the same run. Results in $OUT (if set).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-/tmp/serve-sweep}
mkdir -p "$OUTDIR"
export TARGETS="${TARGETS:-vlmd vlmd_load}"
scripts/gpu-build.sh > "$OUTDIR/build.log" 2>&1 || { tail -30 "$OUTDIR/build.log"; exit 1; }
source scripts/gpu-env.sh
M=/tmp/vlmd-2b; [ -f $M/config.json ] || build-gpu/server/vlmd init-model --preset 2b --out $M
W=/tmp/sweep; rm -rf $W; mkdir -p $W
python3 -c "from PIL import Image; import random; random.seed(1); im=Image.new('RGB',(448,112),'white'); px=im.load()
for y in range(112):
  for x in range(448): px[x,y]=(random.randrange(256),)*3 if (x//14+y//14)%3==0 else (255,255,255)
im.save('$W/img.png')"
cat > $W/vlmd.yaml <<YAML
listen: 127.0.0.1:0
metrics: {listen: "127.0.0.1:0"}
allowed_roots: [$W]
models:
  m2b: {path: $M, device: cuda, dtype: bfloat16}
limits: {max_running: 64, queue_size: 1024, max_prompt_tokens: 1024, max_new_tokens: 512, kv_cache_tokens: 98304}
YAML
build-gpu/server/vlmd serve -c $W/vlmd.yaml --ready-file $W/ready.json > $W/serve.log 2>&1 &
SERVER=$!
for _ in $(seq 1 240); do [ -s $W/ready.json ] && break; sleep 0.5; done
ADDR=$(python3 -c "import json;print(json.load(open('$W/ready.json'))['grpc_address'])")
for n in 1 8 32 64; do
  build-gpu/tests/load/vlmd_load --addr "$ADDR" --pid $SERVER --streams $n --duration ${DURATION:-30} \
    --warmup 10 --model m2b --image $W/img.png --cancel 0 --deadline 0 --max-new-tokens 128 \
    --request-timeout 300 --max-stall 120 --max-rss-growth-mib 100000 --json "$OUTDIR/serve_$n.json" \
    > "$OUTDIR/serve_$n.txt" 2>&1; echo "== $n streams"; head -c 1500 "$OUTDIR/serve_$n.txt"
done
MADDR=$(python3 -c "import json;print(json.load(open('$W/ready.json')).get('metrics_address',''))")
[ -n "$MADDR" ] && curl -s "http://$MADDR/metrics" > "$OUTDIR/metrics.txt"
echo "== metrics endpoint '$MADDR': $(grep -c '^vlmd_' "$OUTDIR/metrics.txt" 2>/dev/null) vlmd_ samples"
kill -TERM $SERVER; wait $SERVER
grep -iE "metrics|error" $W/serve.log | head -5; cp $W/serve.log "$OUTDIR/serve.log"
TRAIN=0 NIMG=1 BATCHES=1,8,32,64 OUT="$OUTDIR" python3 .gpu/hf_anchor.py 2>&1 | grep INFER
