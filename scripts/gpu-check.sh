#!/usr/bin/env bash
# On the GPU machine: build, then the parity tests in bfloat16 on CUDA against the float32
# Hugging Face fixtures, and a `vlmd serve` probe on CUDA with the metrics endpoint.
# Logs go to $OUT (if set).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-/tmp/gpu-check}
mkdir -p "$OUTDIR"
scripts/gpu-build.sh > "$OUTDIR/build.log" 2>&1 || { tail -40 "$OUTDIR/build.log"; exit 1; }
source scripts/gpu-env.sh
echo "== parity, bfloat16 on cuda"
for t in model_parity_test lora_parity_test; do
  VLMD_TEST_DEVICE=cuda VLMD_TEST_DTYPE=bfloat16 build-gpu/tests/parity/$t 2>&1 \
    | grep -E "max\||greedy|PASSED|FAILED|Failure" | tee -a "$OUTDIR/parity_bf16.log" | tail -40
done
echo "== parity, float32 on cuda"
for t in model_parity_test lora_parity_test; do
  VLMD_TEST_DEVICE=cuda VLMD_TEST_DTYPE=float32 build-gpu/tests/parity/$t 2>&1 | grep -E "PASSED|FAILED" | tail -3
done
echo "== serve probe (tiny model on cuda, metrics on loopback)"
build-gpu/server/vlmd init-model --preset tiny --out /tmp/tiny >/dev/null
cat > /tmp/probe.yaml <<YAML
listen: 127.0.0.1:0
metrics: {listen: 127.0.0.1:0}
models:
  tiny: {path: /tmp/tiny, device: cuda, dtype: bfloat16}
YAML
build-gpu/server/vlmd serve -c /tmp/probe.yaml --ready-file /tmp/ready.json > "$OUTDIR/serve.log" 2>&1 &
pid=$!
for i in $(seq 1 60); do [ -s /tmp/ready.json ] && break; sleep 0.5; done
cat /tmp/ready.json; echo
maddr=$(python3 -c "import json;print(json.load(open('/tmp/ready.json')).get('metrics_address',''))" 2>/dev/null)
addr=$(python3 -c "import json;print(json.load(open('/tmp/ready.json'))['grpc_address'])" 2>/dev/null)
VLMD_ADDR=$addr build-gpu/client/vlmctl infer --max-new-tokens 8 "Hello" 2>&1 | tail -3
[ -n "$maddr" ] && python3 -c "import urllib.request;t=urllib.request.urlopen('http://$maddr/metrics').read().decode();print(len(t),'bytes of metrics;',sum(1 for l in t.splitlines() if l.startswith('vlmd_')),'vlmd_ samples')"
kill -TERM $pid; wait $pid; echo "serve exit $?"; grep -iE "metric|civet|error" "$OUTDIR/serve.log" | head -10
