#!/usr/bin/env python3
"""Helpers of scripts/demo.sh (standard library only):

  job-json DIR MODEL --flag value ...   a job.json from vlmctl-sft-style flags (SWIFT names)
  bar                                   a progress bar from a worker's JSON progress lines (stdin)
  summary DIR                           eval lines of DIR/logging.jsonl, best checkpoint
  best DIR                              the best checkpoint's path
  exact-match VLMCTL ADDR ADAPTER FILE  greedy answers for every row of FILE, exact-match rate
"""

import json
import os
import subprocess
import sys

QUERY = "Using LaTeX to perform OCR on the image."
LISTS = {"dataset", "val_dataset", "target_modules"}
TEXT = {"lr_scheduler_type", "dtype", "name", "init_adapter"}


def job_json(job_dir, model, flags):
    """job.json (spec version 1) from --key value pairs; booleans and numbers parsed."""
    spec = {"version": 1, "name": "latex-ocr", "model": model, "output_dir": job_dir,
            "dataset_test_ratio": 0}
    it = iter(flags)
    for flag in it:
        key, value = flag.lstrip("-"), next(it)
        if key in LISTS:
            spec.setdefault(key, []).append(value)
        elif key in TEXT:
            spec[key] = value
        elif value in ("true", "false"):
            spec[key] = value == "true"
        else:
            spec[key] = float(value) if any(c in value for c in ".e") else int(value)
    if "batch_size" in spec:
        spec["batch_size"] = int(spec["batch_size"])
    print(json.dumps(spec, indent=1))


def fmt_time(s):
    s = int(s)
    return "%d:%02d" % (s // 60, s % 60)


def bar():
    """One updating line per train log; eval and checkpoint lines printed in full."""
    tty = sys.stdout.isatty()
    last = {}
    for line in sys.stdin:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        kind = d.get("type")
        if kind == "train":
            last = d
            done = d["step"] / max(1, d["max_steps"])
            filled = int(30 * done)
            text = "  [%s%s] %3d%% step %d/%d  epoch %.1f  loss %.3f  acc %.3f  lr %.2e  %.1f samples/s  ETA %s" % (
                "#" * filled, "." * (30 - filled), 100 * done, d["step"], d["max_steps"],
                d["epoch"], d["loss"], d["acc"], d["learning_rate"],
                d.get("samples_per_second", 0), fmt_time(d.get("remaining_s", 0)))
            print(("\r" + text) if tty else text, end="" if tty else "\n", flush=True)
        elif kind == "eval":
            print(("\n" if tty and last else "") + "  eval at step %d: eval_loss %.3f  eval_acc %.3f"
                  % (d["step"], d["eval_loss"], d["eval_acc"]), flush=True)
        elif kind == "checkpoint":
            print("  checkpoint %s%s" % (d["path"], " (best so far)" if d.get("best") else ""))
        elif kind == "state" and d.get("state") not in (None, "RUNNING"):
            print(("\n" if tty else "") + "  job %s %s" % (d["state"], d.get("message", "")))
        elif kind == "log":
            print("  " + d.get("line", ""))


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summary(job_dir):
    rows = read_jsonl(os.path.join(job_dir, "logging.jsonl"))
    for r in rows:
        if "eval_loss" in r:
            print("  epoch %5.1f: eval_loss %.3f  eval_acc %.3f" % (r.get("epoch", 0),
                                                                  r["eval_loss"], r["eval_acc"]))
    train = [r for r in rows if "loss" in r and "eval_loss" not in r]
    if train:
        print("  training loss %.3f -> %.3f, acc %.3f -> %.3f" % (
            train[0]["loss"], train[-1]["loss"], train[0]["acc"], train[-1]["acc"]))
    end = [r for r in rows if "best_model_checkpoint" in r]
    if end:
        print("  best checkpoint: %s (eval_loss %.3f)" % (end[-1]["best_model_checkpoint"],
                                                          end[-1]["best_metric"]))


def best(job_dir):
    rows = read_jsonl(os.path.join(job_dir, "logging.jsonl"))
    end = [r for r in rows if "best_model_checkpoint" in r]
    print(end[-1]["best_model_checkpoint"] if end else "")


def exact_match(vlmctl, addr, adapter, path):
    rows = read_jsonl(path)
    base = os.path.dirname(path)
    hits = 0
    for r in rows:
        image = os.path.join(base, r["images"][0])
        out = subprocess.run([vlmctl, "--addr", addr, "infer", "--adapter", adapter, "--image",
                              image, "--max-new-tokens", "24", "--temperature", "0", QUERY],
                             capture_output=True, text=True, check=True).stdout.strip()
        hits += out == r["response"]
        print("  %s %-24s %s" % ("=" if out == r["response"] else "x", r["response"], out))
    print("  %s: exact match %d/%d" % (os.path.basename(path), hits, len(rows)))


def main(argv):
    cmd = argv[0]
    if cmd == "job-json":
        job_json(argv[1], argv[2], argv[3:])
    elif cmd == "bar":
        bar()
    elif cmd == "summary":
        summary(argv[1])
    elif cmd == "best":
        best(argv[1])
    elif cmd == "exact-match":
        exact_match(*argv[1:5])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
