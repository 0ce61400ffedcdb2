#!/usr/bin/env bash
# On the GPU machine: the fine-tuning reference (transformers + PEFT, float32 on the CPU) into
# tests/fixtures/train, vlmd's trainer parity against it (float32 CPU, bfloat16 CUDA), a
# training job on CUDA whose TensorBoard files are read back with the `tensorboard` package,
# and a merged checkpoint loaded by transformers with the same logits as base + adapter.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-/tmp/gpu-train}
mkdir -p "$OUTDIR"
export TARGETS="${TARGETS:-vlmd train_parity_test vlmd_train_bench vlmd_bench}"
scripts/gpu-build.sh > "$OUTDIR/build.log" 2>&1 || { tail -40 "$OUTDIR/build.log"; exit 1; }
source scripts/gpu-env.sh
echo "== reference"
PYTHONUNBUFFERED=1 python3 tests/reference/train_reference.py --fixtures tests/fixtures \
  --out tests/fixtures/train 2>&1 | tail -9
tar czf "$OUTDIR/train_fixture.tgz" -C tests/fixtures train
echo "== parity float32 cpu"
build-gpu/tests/parity/train_parity_test 2>&1 | grep -E "step|final|OK|FAILED|Failure|Expected|Which|actual" | head -40
echo "== parity bfloat16 cuda"
VLMD_TEST_DEVICE=cuda VLMD_TEST_DTYPE=bfloat16 build-gpu/tests/parity/train_parity_test 2>&1 \
  | grep -E "step|final|OK|FAILED|Failure" | head -20
echo "== job on cuda + tensorboard + merge in transformers"
J=/tmp/gpujob; rm -rf $J; mkdir -p $J
python3 - "$J" <<'PY'
import json, sys
j = sys.argv[1]
spec = {"model": "tests/fixtures/models/gqa_tied", "dataset": ["tests/fixtures/train/train.jsonl"],
        "val_dataset": ["tests/fixtures/train/val.jsonl"], "max_steps": 8, "batch_size": 2,
        "gradient_accumulation_steps": 1, "learning_rate": 0.002, "eval_steps": 4, "save_steps": 4,
        "logging_steps": 1, "max_pixels": 50176, "gpus": 1, "dtype": "bfloat16"}
json.dump(spec, open(j + "/job.json", "w"))
PY
build-gpu/server/vlmd train --job $J > $J/stdout.log 2> $J/stderr.log; echo "train exit $?"; tail -2 $J/stdout.log
python3 - "$J" <<'PY'
import glob, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
j = sys.argv[1]
ea = EventAccumulator(glob.glob(j + "/runs")[0]); ea.Reload()
tags = ea.Tags()["scalars"]
print("tensorboard tags:", sorted(tags))
for t in ("train/loss", "eval/loss", "train/learning_rate"):
    print(t, [(e.step, round(e.value, 5)) for e in ea.Scalars(t)])
PY
build-gpu/server/vlmd merge --model tests/fixtures/models/gqa_tied --adapter $J/checkpoint-8 --out $J/merged --dtype float32
python3 - "$J" <<'PY'
import sys, torch
sys.path.insert(0, "tests/reference")
import common
from peft import PeftModel
j = sys.argv[1]
req = {"messages": [{"role": "user", "content": [{"type": "image", "image": "tests/fixtures/images/crop_112x56.png"},
                                                 {"type": "text", "text": "LaTeX?"}]}], "max_pixels": 50176}
base, _, _ = common.load_pretrained("tests/fixtures/models/gqa_tied")
tok, _ = common.load_tokenizer("tests/fixtures/models/gqa_tied")
inputs, _ = common.build_inputs(req, base.config, model_dir="tests/fixtures/models/gqa_tied", tokenizer=tok)
peft = PeftModel.from_pretrained(base, j + "/checkpoint-8").eval()
merged, info, _ = common.load_pretrained(j + "/merged")
with torch.no_grad():
    a = peft(**inputs).logits
    b = merged(**inputs).logits
print("transformers loads the vlmd merge:", info)
print("merged vs PEFT base+adapter max|diff| %.3g (max|logit| %.3g)" % ((a - b).abs().max(), a.abs().max()))
PY
