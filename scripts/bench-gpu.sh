#!/usr/bin/env bash
# On the GPU machine: builds vlmd, writes the 2B-shaped random checkpoint, and times vlmd and
# the Hugging Face reference (../shared/tools/hf_anchor.py, carried in .gpu/) in the
# same run on the same GPU. Results: $OUT/bench.json (if OUT is set) and a table on stdout.
# Usage: scripts/bench-gpu.sh [batches] ; e.g. scripts/bench-gpu.sh 1,8
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-1,8}
OUTDIR=${OUT:-/tmp/bench}
mkdir -p "$OUTDIR"
[ -x build-gpu/server/vlmd ] || scripts/gpu-build.sh >/dev/null
source scripts/gpu-env.sh
MODEL=/tmp/vlmd-2b
[ -f $MODEL/config.json ] || build-gpu/server/vlmd init-model --preset 2b --out $MODEL
build-gpu/tests/bench/vlmd_bench --model $MODEL --device cuda --dtype bfloat16 \
  --batches "$BATCHES" --json "$OUTDIR/vlmd_bench.json" 2>&1 | grep -v "^20" || true
if [ -f .gpu/hf_anchor.py ]; then  # ../shared/tools/hf_anchor.py, carried in .gpu
  TRAIN=0 BATCHES="$BATCHES" OUT="$OUTDIR" python3 .gpu/hf_anchor.py 2>&1 | grep -E "INFER|TRAIN|init" || true
fi
