#!/usr/bin/env python3
"""Prints a job's evaluation history from its logging.jsonl (SWIFT's keys): every eval line,
the first and last training loss and accuracy, and the best checkpoint. Used by
scripts/demo.sh; standard library only.

    demo_summary.py JOB_DIR
"""

import json
import os
import sys


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(os.path.join(argv[0], "logging.jsonl")) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
