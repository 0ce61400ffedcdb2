#!/usr/bin/env bash
# On the GPU machine: the load/soak run of scripts/load.sh against the 2B-shaped model in
# bfloat16 on CUDA (plus the fixture model with its PEFT adapter, on CUDA too): 256 streaming
# clients with images, adapter requests, cancellations and short deadlines for DURATION seconds
# (default 420: a device command may run 10 minutes, build and model creation included).
# Results in $OUT (if set).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-/tmp/gpu-soak}
mkdir -p "$OUTDIR"
export TARGETS="${TARGETS:-vlmd vlmd_load}"
scripts/gpu-build.sh > "$OUTDIR/build.log" 2>&1 || { tail -30 "$OUTDIR/build.log"; exit 1; }
source scripts/gpu-env.sh
M=/tmp/vlmd-2b; [ -f $M/config.json ] || build-gpu/server/vlmd init-model --preset 2b --out $M >/dev/null
F=$PWD/tests/fixtures
W=/tmp/soak; rm -rf $W; mkdir -p $W
cat > $W/vlmd.yaml <<YAML
listen: 127.0.0.1:0
metrics: {listen: 127.0.0.1:0}
models:
  m2b: {path: $M, device: cuda, dtype: bfloat16}
  gqa: {path: $F/models/gqa_tied, device: cuda}
adapters:
  fixture: {path: $F/lora/llm_r4, model: gqa}
allowed_roots: [$F]
limits: {max_running: 64, queue_size: 1024, max_concurrent_requests: 1024, kv_cache_tokens: 98304}
log_level: warning
YAML
build-gpu/server/vlmd serve -c $W/vlmd.yaml --ready-file $W/ready.json > "$OUTDIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 240); do [ -s $W/ready.json ] && break; sleep 0.5; done
ADDR=$(python3 -c "import json;print(json.load(open('$W/ready.json'))['grpc_address'])")
MADDR=$(python3 -c "import json;print(json.load(open('$W/ready.json'))['metrics_address'])")
build-gpu/tests/load/vlmd_load --addr "$ADDR" --pid $SERVER --streams ${STREAMS:-256} \
  --duration ${DURATION:-420} --warmup ${WARMUP:-60} --model m2b --adapter-model gqa \
  --adapter fixture --image $F/images/formula_176x53_p.png --image $F/images/tiny_20x15.png \
  --cancel 0.1 --deadline 0.1 --deadline-ms 300 --max-new-tokens ${MAX_NEW_TOKENS:-64} \
  --request-timeout 900 --max-stall 120 --json "$OUTDIR/soak.json" > "$OUTDIR/soak.txt" 2>&1
echo "vlmd_load exit $?"
grep -v "^t=" "$OUTDIR/soak.txt" | head -30
curl -s "http://$MADDR/metrics" | grep -E "^vlmd_(requests_total|kv_cache_usage|requests_running|gpu_memory)" | head -20
nvidia-smi --query-gpu=memory.used --format=csv
kill -TERM $SERVER; wait $SERVER
