#!/usr/bin/env bash
# On the GPU machine: a LoRA job on CUDA as one process (batch 2) and as two data-parallel
# ranks (batch 1 each) started with torchrun's environment, and their losses side by side.
# With one GPU both ranks share device 0, which NCCL refuses (one rank per GPU); the script
# records what happens. Results in $OUT (if set).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-/tmp/gpu-dist}
mkdir -p "$OUTDIR"
export TARGETS="${TARGETS:-vlmd}"
scripts/gpu-build.sh > "$OUTDIR/dist-build.log" 2>&1 || { tail -40 "$OUTDIR/dist-build.log"; exit 1; }
grep "data-parallel backends" "$OUTDIR/dist-build.log"
source scripts/gpu-env.sh
nvidia-smi -L
spec() {  # spec DIR BATCH GPUS
  python3 - "$@" <<'PY'
import json, sys
d, batch, gpus = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = {"model": "tests/fixtures/models/gqa_tied", "dataset": ["tests/fixtures/train/train.jsonl"],
        "val_dataset": ["tests/fixtures/train/val.jsonl"], "max_steps": 4, "batch_size": batch,
        "gradient_accumulation_steps": 1, "learning_rate": 0.002, "eval_steps": 4, "save_steps": 4,
        "logging_steps": 1, "max_pixels": 50176, "gpus": gpus, "dtype": "float32",
        "lora_dropout": 0.0, "output_dir": d}
json.dump(spec, open(d + "/job.json", "w"))
PY
}
J=/tmp/dist; rm -rf $J; mkdir -p $J/one $J/two
spec $J/one 2 1; spec $J/two 1 2
build-gpu/server/vlmd train --job $J/one > $J/one/out.log 2> $J/one/err.log; echo "one process: exit $?"
PORT=29611
for r in 1 0; do
  WORLD_SIZE=2 RANK=$r LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT VLMD_DIST_TIMEOUT_S=60 \
    build-gpu/server/vlmd train --job $J/two > $J/two/out$r.log 2> $J/two/err$r.log &
done
wait; echo "two ranks on one GPU: done"
for f in $J/one/out.log $J/two/out0.log $J/two/out1.log $J/two/err0.log $J/two/err1.log; do
  echo "== $f"; grep -E '"loss"|state|data-parallel|NCCL|rror' "$f" | cut -c1-400 | head -12
done
cp -r $J "$OUTDIR/dist-jobs" 2>/dev/null; rm -rf "$OUTDIR"/dist-jobs/*/checkpoint-*
