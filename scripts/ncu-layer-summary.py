#!/usr/bin/env python3
"""Summarises an Nsight Compute CSV (--metrics gpu__time_duration.sum --csv) of vlmd decode
steps: cuts the kernel sequence into decoder layers at their first kernel (the q projection GEMM
with bias, M = 1 tile), keeps the decode layers (exactly one attention kernel and no other
phase's kernels in between: 30 to 60 kernels), and groups a layer's kernels into GEMM,
attention, norm reductions, KV-cache writes and other elementwise kernels, averaged per layer.

Usage: scripts/ncu-layer-summary.py docs/profile-2026-11-25-decode-b1-ncu.csv.gz
"""
import collections
import csv
import gzip
import io
import re
import sys


def main():
    path = sys.argv[1]
    text = (gzip.open if path.endswith(".gz") else open)(path, "rt").read().splitlines()
    header = next(i for i, line in enumerate(text) if line.startswith('"ID"'))
    rows = list(csv.DictReader(io.StringIO("\n".join(text[header:]))))
    kernels = [(re.sub(r"<.*", "", r["Kernel Name"]).replace("void ", ""),
                float(r["Metric Value"].replace(",", ""))) for r in rows]
    starts = [i for i, (name, _) in enumerate(kernels) if "bias_TNT" in name and "64x8" in name]
    cycles = [kernels[a:b] for a, b in zip(starts, starts[1:])]
    decode = [c for c in cycles
              if 30 <= len(c) <= 60 and sum("sdpa" in n or "flash" in n for n, _ in c) == 1]
    if not decode:
        sys.exit("no decode layer found")
    window = [k for c in decode for k in c]
    layers = len(decode)

    def category(name):
        if "nvjet" in name or "gemm" in name.lower() or "splitK" in name:
            return "GEMM"
        if "sdpa" in name or "flash" in name:
            return "attention"
        if "reduce" in name:
            return "reductions (RMSNorm)"
        if "index" in name:
            return "index (KV-cache writes)"
        return "other elementwise (casts, rotary, SiLU*mul, adds, norm scaling)"

    totals = collections.defaultdict(lambda: [0, 0.0])
    for name, ns in window:
        totals[category(name)][0] += 1
        totals[category(name)][1] += ns
    all_ns = sum(t for _, t in totals.values())
    print(f"{layers} decode layers; per layer: {len(window) / layers:.1f} kernels, "
          f"{all_ns / layers / 1e3:.1f} us of kernel time (x 28 layers = "
          f"{all_ns / layers * 28 / 1e6:.2f} ms)")
    for name, (count, ns) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:62s} {count / layers:5.1f} kernels {ns / layers / 1e3:7.1f} us "
              f"{100 * ns / all_ns:5.1f}%")


if __name__ == "__main__":
    main()
