#!/usr/bin/env bash
# Load and soak run on loopback: starts `vlmd serve` (tiny CPU model + the fixture model with
# its PEFT adapter), drives it with tests/load/vlmd_load and writes the report and JSON to
# $OUT_DIR (default build/load). Settings from the environment:
#   STREAMS (256) DURATION seconds (600) WARMUP (60) MAX_RUNNING (16) MAX_NEW_TOKENS (16)
#   CANCEL (0.1) DEADLINE (0.1) DEADLINE_MS (300) REQUEST_TIMEOUT (900) MAX_STALL (120)
#   EXTRA (more vlmd_load flags)
# Example (the run in docs/load.md): scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
OUT_DIR=${OUT_DIR:-build/load}
mkdir -p "$OUT_DIR"
[ -x build/server/vlmd ] && [ -x build/tests/load/vlmd_load ] ||
  cmake --build build -j "${JOBS:-2}" --target vlmd vlmd_load
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
build/server/vlmd init-model --preset tiny --seed 7 --out "$WORK/tiny" >/dev/null
F=$SRC/tests/fixtures
cat > "$WORK/vlmd.yaml" <<YAML
listen: 127.0.0.1:0
metrics: {listen: 127.0.0.1:0}
models:
  tiny: $WORK/tiny
  gqa: $F/models/gqa_tied
adapters:
  fixture: {path: $F/lora/llm_r4, model: gqa}
allowed_roots: [$F]
limits:
  max_running: ${MAX_RUNNING:-16}
  queue_size: 1024
  max_concurrent_requests: 1024
log_level: warning
YAML
build/server/vlmd serve -c "$WORK/vlmd.yaml" --ready-file "$WORK/ready.json" \
  > "$OUT_DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do [ -s "$WORK/ready.json" ] && break; sleep 0.5; done
ADDR=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['grpc_address'])")
echo "server pid $SERVER on $ADDR; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
build/tests/load/vlmd_load --addr "$ADDR" --pid "$SERVER" --streams "${STREAMS:-256}" \
  --duration "${DURATION:-600}" --warmup "${WARMUP:-60}" --model tiny --adapter-model gqa \
  --adapter fixture --image "$F/images/tiny_20x15.png" --image "$F/images/formula_176x53_p.png" \
  --cancel "${CANCEL:-0.1}" --deadline "${DEADLINE:-0.1}" \
  --deadline-ms "${DEADLINE_MS:-300}" --max-new-tokens "${MAX_NEW_TOKENS:-16}" \
  --request-timeout "${REQUEST_TIMEOUT:-900}" --max-stall "${MAX_STALL:-120}" \
  --json "$OUT_DIR/load.json" ${EXTRA:-} | tee "$OUT_DIR/report.txt" || status=$?
kill -TERM $SERVER; wait $SERVER || true
exit $status
