#!/usr/bin/env python3
"""Synthetic LaTeX-OCR data for vlmd: formulas from a small seeded grammar, rendered to PNG with
Debian's LaTeX (latex + dvipng), written in the fine-tuning format that vlmd's jobs read.

    scripts/make_latex_data.py --out DATA_ROOT [--count 1000] [--seed 0] [--style mixed]

writes DATA_ROOT/latex-ocr-print/ (the folder the job spec name `latex-ocr-print` resolves to
under the server's data root):

    train.jsonl, validation.jsonl   one row per formula:
        {"query": "<image>Using LaTeX to perform OCR on the image.",
         "response": "<formula>", "images": ["images/000000.png"]}
    images/NNNNNN.png               the rendered formulas (white background, tight box)
    formulas.txt                    id, split and formula, tab-separated

Formulas come in the compact style (`\\frac{a}{b}`, `x_i^2`) and in the space-separated token
style of im2latex-100k and LaTeX_OCR (`\\frac { a } { b }`, `x _ { i } ^ { 2 }`); both render
to the same image. `--print N` only prints formulas (no LaTeX needed); `--formulas FILE`
renders formulas from a file (one per line) instead of generating them.

Python 3 standard library only. Needs `latex` and `dvipng` (scripts/setup.sh installs them).
"""

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

QUERY = "<image>Using LaTeX to perform OCR on the image."

# ---------------------------------------------------------------------------------------------
# Grammar. A formula is a list of LaTeX tokens ("\\frac", "{", "a", "}", "_", ...); the two
# styles are two ways of joining the same tokens, so they always render alike.

LETTERS = list("abcdefghijkmnpqrstuvwxyz") + list("ABCDEFGHKLMNPRSTUVWXYZ")
GREEK = [
    "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\theta", "\\lambda", "\\mu",
    "\\nu", "\\xi", "\\pi", "\\rho", "\\sigma", "\\tau", "\\phi", "\\chi", "\\psi", "\\omega",
    "\\Gamma", "\\Delta", "\\Theta", "\\Lambda", "\\Sigma", "\\Phi", "\\Psi", "\\Omega",
]
BINARY_OPS = ["+", "-", "+", "-", "\\cdot", "\\times", "\\pm"]
RELATIONS = ["=", "=", "=", "\\leq", "\\geq", "<", ">", "\\neq", "\\approx", "\\equiv"]
FUNCTIONS = ["\\sin", "\\cos", "\\tan", "\\log", "\\ln", "\\exp"]
ACCENTS = ["\\hat", "\\bar", "\\vec", "\\tilde", "\\dot"]
BIG_OPS = ["\\sum", "\\prod", "\\int"]
MATRICES = ["pmatrix", "bmatrix", "vmatrix"]


def group(tokens):
    return ["{"] + tokens + ["}"]


class Grammar:
    """Random formulas; `depth` bounds nesting. Deterministic for a given random.Random."""

    def __init__(self, rng, max_depth=3):
        self.rng = rng
        self.max_depth = max_depth

    def symbol(self):
        """A letter, a Greek letter or a number (digits are separate tokens, as in im2latex)."""
        r = self.rng.random()
        if r < 0.55:
            return [self.rng.choice(LETTERS)]
        if r < 0.8:
            return [self.rng.choice(GREEK)]
        return list(str(self.rng.randint(0, 99 if self.rng.random() < 0.3 else 9)))

    def variable(self):
        return [self.rng.choice(LETTERS if self.rng.random() < 0.7 else GREEK)]

    def small(self):
        """A short script: a letter, a digit, n+1, i=1, ..."""
        r = self.rng.random()
        if r < 0.4:
            return [self.rng.choice("ijknmt")]
        if r < 0.7:
            return [str(self.rng.randint(0, 9))]
        if r < 0.85:
            return [self.rng.choice("nmk"), self.rng.choice("+-"), "1"]
        return [self.rng.choice(GREEK[:18])]

    def scripted(self, base):
        r = self.rng.random()
        if r < 0.3:
            return base + ["_"] + group(self.small())
        if r < 0.6:
            return base + ["^"] + group(self.small())
        if r < 0.75:
            return base + ["_"] + group(self.small()) + ["^"] + group(self.small())
        return base

    def atom(self, depth):
        r = self.rng.random()
        if depth >= self.max_depth or r < 0.45:
            return self.scripted(self.variable()) if r < 0.3 else self.symbol()
        if r < 0.58:
            return ["\\frac"] + group(self.expr(depth + 1, 2)) + group(self.expr(depth + 1, 2))
        if r < 0.66:
            if self.rng.random() < 0.25:
                return ["\\sqrt", "["] + [str(self.rng.randint(3, 4))] + ["]"] + group(
                    self.expr(depth + 1, 2))
            return ["\\sqrt"] + group(self.expr(depth + 1, 2))
        if r < 0.74:
            return self.big_op(depth)
        if r < 0.81:
            return [self.rng.choice(FUNCTIONS)] + self.paren(depth)
        if r < 0.88:
            power = ["^"] + group(self.small()) if self.rng.random() < 0.4 else []
            return self.paren(depth) + power
        if r < 0.94:
            return [self.rng.choice(ACCENTS)] + group([self.rng.choice(LETTERS)])
        return self.matrix(depth)

    def paren(self, depth):
        inner = self.expr(depth + 1, 3)
        if self.rng.random() < 0.3:
            return ["\\left("] + inner + ["\\right)"]
        return ["("] + inner + [")"]

    def big_op(self, depth):
        op = self.rng.choice(BIG_OPS)
        if op == "\\int":
            lo, hi = ["0"], [self.rng.choice(["1", "\\infty", "x", "T"])]
            var = self.rng.choice("xtuy")
            body = self.expr(depth + 1, 2)
            return [op, "_"] + group(lo) + ["^"] + group(hi) + body + ["d", var]
        i = self.rng.choice("ijk")
        return [op, "_"] + group([i, "=", self.rng.choice("01")]) + ["^"] + group(
            [self.rng.choice(["n", "N", "\\infty"])]) + self.scripted([self.rng.choice(LETTERS)])

    def matrix(self, depth):
        env = self.rng.choice(MATRICES)
        rows, cols = self.rng.choice([(2, 2), (2, 2), (2, 3), (3, 3), (3, 1)])
        out = ["\\begin{" + env + "}"]
        for r in range(rows):
            for c in range(cols):
                if c:
                    out.append("&")
                out += self.scripted(self.variable()) if r == c else self.symbol()
            if r + 1 < rows:
                out.append("\\\\")
        return out + ["\\end{" + env + "}"]

    def expr(self, depth, max_terms):
        n = self.rng.randint(1, max_terms)
        out = self.atom(depth)
        for _ in range(n - 1):
            if self.rng.random() < 0.25:
                out += self.atom(depth)  # implicit product
            else:
                out += [self.rng.choice(BINARY_OPS)] + self.atom(depth)
        return out

    def formula(self):
        lhs = self.expr(0, 3)
        if self.rng.random() < 0.55:
            return lhs + [self.rng.choice(RELATIONS)] + self.expr(0, 3)
        return lhs


def is_control_word(token):
    return len(token) > 1 and token[0] == "\\" and token[1:].isalpha()


def join_tokens(tokens):
    """The space-separated token style of im2latex: every token apart."""
    return " ".join(tokens)


def join_compact(tokens):
    """The compact style: spaces only where LaTeX needs them (after a control word followed by
    a letter); a script of one character loses its braces (`x_{i}` -> `x_i`) unless a letter or
    digit follows (`x^{2}y`, not `x^2y`)."""
    out = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if (t in ("_", "^") and i + 3 < len(tokens) and tokens[i + 1] == "{"
                and tokens[i + 3] == "}" and len(tokens[i + 2]) == 1
                and not (i + 4 < len(tokens) and tokens[i + 4][0].isalnum())):
            pieces = [t, tokens[i + 2]]
            i += 4
        else:
            pieces = [t]
            i += 1
        for p in pieces:
            if out and is_control_word(out[-1]) and p[0].isalpha():
                out.append(" ")
            out.append(p)
    return "".join(out)


def generate(count, seed, style, max_tokens, max_depth, min_tokens=1):
    """`count` distinct formulas (text) of min_tokens..max_tokens LaTeX tokens.
    style: compact, tokens or mixed."""
    rng = random.Random(seed)
    grammar = Grammar(rng, max_depth)
    seen, out = set(), []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 200:
            raise SystemExit(f"make_latex_data: could not find {count} distinct formulas of at "
                             f"most {max_tokens} tokens; raise --max-tokens")
        tokens = grammar.formula()
        if (max_tokens and len(tokens) > max_tokens) or len(tokens) < min_tokens:
            continue
        use_tokens = style == "tokens" or (style == "mixed" and rng.random() < 0.5)
        text = join_tokens(tokens) if use_tokens else join_compact(tokens)
        if text in seen:
            continue
        seen.add(text)
        out.append(text)
    return out


# ---------------------------------------------------------------------------------------------
# Rendering: one LaTeX run per chunk of formulas (one `preview` page each), dvipng per page.

PREAMBLE = r"""\documentclass[12pt]{article}
\usepackage{amsmath,amssymb}
\usepackage[active,tightpage]{preview}
\setlength\PreviewBorder{2pt}
\pagestyle{empty}
\begin{document}
"""


def run_latex(formulas, workdir, dpi):
    """Renders formulas to workdir/pNNNN.png (1-based page order); returns the page paths,
    or raises CalledProcessError when LaTeX rejects the chunk."""
    body = "".join("\\begin{preview}$\\displaystyle %s$\\end{preview}\n" % f for f in formulas)
    with open(os.path.join(workdir, "f.tex"), "w", encoding="utf-8") as fh:
        fh.write(PREAMBLE + body + "\\end{document}\n")
    subprocess.run(["latex", "-interaction=nonstopmode", "-halt-on-error", "f.tex"],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120)
    subprocess.run(["dvipng", "-q", "-T", "tight", "-D", str(dpi), "-bg", "White",
                    "-o", "p%04d.png", "f.dvi"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    pages = [os.path.join(workdir, "p%04d.png" % (i + 1)) for i in range(len(formulas))]
    missing = [p for p in pages if not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"dvipng wrote {len(pages) - len(missing)} of {len(pages)} pages")
    return pages


def render_chunk(job):
    """Worker: renders [(index, formula)] into out_dir/NNNNNN.png. A chunk LaTeX rejects is
    retried formula by formula, so one bad formula costs only itself. Returns (done, failed)."""
    items, out_dir, dpi = job
    done, failed = [], []
    with tempfile.TemporaryDirectory(prefix="vlmd-latex-") as tmp:
        try:
            pages = run_latex([f for _, f in items], tmp, dpi)
            for (index, _), page in zip(items, pages):
                shutil.move(page, os.path.join(out_dir, "%06d.png" % index))
                done.append(index)
            return done, failed
        except (subprocess.SubprocessError, RuntimeError):
            if len(items) == 1:
                return done, [items[0]]
    for item in items:
        d, f = render_chunk(([item], out_dir, dpi))
        done += d
        failed += f
    return done, failed


def render_all(formulas, out_dir, dpi, workers, chunk):
    """Renders formulas[i] to out_dir/{i:06d}.png in parallel processes; returns the failures
    as [(index, formula)]."""
    os.makedirs(out_dir, exist_ok=True)
    items = list(enumerate(formulas))
    jobs = [(items[i:i + chunk], out_dir, dpi) for i in range(0, len(items), chunk)]
    failed = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for _, f in pool.map(render_chunk, jobs):
            failed += f
    return failed


# ---------------------------------------------------------------------------------------------
# Data set files.

def split_ids(n, val_ratio, seed):
    """Deterministic validation ids: max(1, round(n * ratio)) when ratio > 0 and n > 1."""
    if val_ratio <= 0 or n < 2:
        return set()
    n_val = min(n - 1, max(1, round(n * val_ratio)))
    return set(random.Random(seed + 1).sample(range(n), n_val))


def write_dataset(out_dir, formulas, failed, val_ratio, seed):
    bad = {i for i, _ in failed}
    good = [i for i in range(len(formulas)) if i not in bad]
    val = {good[j] for j in split_ids(len(good), val_ratio, seed)}
    counts = {"train": 0, "validation": 0}
    with open(os.path.join(out_dir, "train.jsonl"), "w", encoding="utf-8") as train, \
            open(os.path.join(out_dir, "validation.jsonl"), "w", encoding="utf-8") as valid, \
            open(os.path.join(out_dir, "formulas.txt"), "w", encoding="utf-8") as listing:
        for i in good:
            split = "validation" if i in val else "train"
            row = {"query": QUERY, "response": formulas[i], "images": ["images/%06d.png" % i]}
            (valid if split == "validation" else train).write(
                json.dumps(row, ensure_ascii=False) + "\n")
            listing.write("%06d\t%s\t%s\n" % (i, split, formulas[i]))
            counts[split] += 1
    return counts


def read_formulas(path, count):
    with open(path, encoding="utf-8") as fh:
        lines = [line.strip() for line in fh if line.strip()]
    return lines[:count] if count else lines


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="data root; the set goes to OUT/NAME/")
    p.add_argument("--name", default="latex-ocr-print", help="data set folder (default %(default)s)")
    p.add_argument("--count", type=int, default=1000, help="formulas (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="grammar and split seed")
    p.add_argument("--style", choices=["compact", "tokens", "mixed"], default="mixed",
                   help="compact (\\frac{a}{b}), tokens (\\frac { a } { b }) or mixed")
    p.add_argument("--max-tokens", type=int, default=60,
                   help="longest formula in LaTeX tokens (0 = no limit)")
    p.add_argument("--min-tokens", type=int, default=1, help="shortest formula in LaTeX tokens")
    p.add_argument("--max-depth", type=int, default=3, help="nesting depth of the grammar")
    p.add_argument("--val-ratio", type=float, default=0.1,
                   help="share of formulas in validation.jsonl (default %(default)s)")
    p.add_argument("--dpi", type=int, default=120, help="render resolution (default %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel LaTeX processes (default: the CPU count)")
    p.add_argument("--chunk", type=int, default=0,
                   help="formulas per LaTeX run (default: spread evenly, at most 64)")
    p.add_argument("--formulas", help="render these formulas (one per line) instead")
    p.add_argument("--print", type=int, metavar="N", dest="print_only",
                   help="print N generated formulas and exit (no rendering)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if args.print_only is not None:
        for f in generate(args.print_only, args.seed, args.style, args.max_tokens, args.max_depth,
                          args.min_tokens):
            print(f)
        return 0
    if not args.out:
        print("make_latex_data: --out is required (or --print N)", file=sys.stderr)
        return 2
    for tool in ("latex", "dvipng"):
        if shutil.which(tool) is None:
            print(f"make_latex_data: `{tool}` not found; run scripts/setup.sh "
                  "(texlive-latex-base, texlive-latex-extra, dvipng)", file=sys.stderr)
            return 2
    if args.formulas:
        formulas = read_formulas(args.formulas, args.count)
    else:
        formulas = generate(args.count, args.seed, args.style, args.max_tokens, args.max_depth,
                            args.min_tokens)
    out_dir = os.path.join(args.out, args.name)
    image_dir = os.path.join(out_dir, "images")
    if os.path.isdir(image_dir):
        shutil.rmtree(image_dir)
    workers = max(1, args.workers)
    chunk = args.chunk or max(1, min(64, -(-len(formulas) // workers)))
    failed = render_all(formulas, image_dir, args.dpi, workers, chunk)
    for index, formula in failed:
        print(f"make_latex_data: LaTeX rejected formula {index}: {formula}", file=sys.stderr)
    counts = write_dataset(out_dir, formulas, failed, args.val_ratio, args.seed)
    print(f"make_latex_data: {counts['train']} train + {counts['validation']} validation "
          f"formulas in {out_dir} ({len(failed)} rejected)")
    return 1 if len(failed) == len(formulas) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
