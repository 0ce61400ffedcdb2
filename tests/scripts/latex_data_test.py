#!/usr/bin/env python3
"""Tests of scripts/make_latex_data.py and scripts/convert_latex_ocr.py (standard library only;
rendering needs latex and dvipng, which scripts/setup.sh installs)."""

import filecmp
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import types
import unittest
from contextlib import redirect_stderr

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "scripts"))

import convert_latex_ocr as conv  # noqa: E402
import make_latex_data as mld  # noqa: E402

QUERY = "<image>Using LaTeX to perform OCR on the image."
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


class GrammarTest(unittest.TestCase):
    def test_seeded_and_distinct(self):
        a = mld.generate(50, 3, "mixed", 40, 3)
        self.assertEqual(a, mld.generate(50, 3, "mixed", 40, 3))
        self.assertNotEqual(a, mld.generate(50, 4, "mixed", 40, 3))
        self.assertEqual(len(set(a)), 50)

    def test_max_tokens(self):
        for f in mld.generate(100, 1, "tokens", 10, 3):
            self.assertLessEqual(len(f.split(" ")), 10, f)

    def test_styles(self):
        tokens = ["\\frac", "{", "a", "}", "{", "b", "}", "+", "x", "_", "{", "i", "}", "^",
                  "{", "2", "}", "y", "\\alpha", "x", "_", "{", "\\beta", "}"]
        self.assertEqual(mld.join_tokens(tokens),
                         "\\frac { a } { b } + x _ { i } ^ { 2 } y \\alpha x _ { \\beta }")
        self.assertEqual(mld.join_compact(tokens), "\\frac{a}{b}+x_i^{2}y\\alpha x_{\\beta}")

    def test_balanced_and_both_styles(self):
        forms = mld.generate(200, 7, "mixed", 60, 3)
        spaced = [f for f in forms if " { " in f]
        self.assertTrue(spaced and len(spaced) < len(forms), "mixed has both styles")
        for f in forms:
            self.assertEqual(f.count("{"), f.count("}"), f)
            self.assertEqual(f.count("\\left("), f.count("\\right)"), f)


@unittest.skipUnless(shutil.which("latex") and shutil.which("dvipng"), "needs latex + dvipng")
class RenderTest(unittest.TestCase):
    def test_styles_render_alike(self):
        g = mld.Grammar(random.Random(11))
        forms = [g.formula() for _ in range(12)]
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            pa = mld.run_latex([mld.join_compact(t) for t in forms], a, 100)
            pb = mld.run_latex([mld.join_tokens(t) for t in forms], b, 100)
            for f, x, y in zip(forms, pa, pb):
                self.assertTrue(filecmp.cmp(x, y, shallow=False), mld.join_tokens(f))

    def test_dataset_layout(self):
        with tempfile.TemporaryDirectory() as out:
            r = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "make_latex_data.py"),
                                "--out", out, "--count", "10", "--val-ratio", "0.2",
                                "--workers", "2", "--dpi", "100"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            d = os.path.join(out, "latex-ocr-print")
            rows = {}
            for split in ("train", "validation"):
                with open(os.path.join(d, split + ".jsonl")) as fh:
                    rows[split] = [json.loads(line) for line in fh]
            self.assertEqual((len(rows["train"]), len(rows["validation"])), (8, 2))
            for row in rows["train"] + rows["validation"]:
                self.assertEqual(sorted(row), ["images", "query", "response"])
                self.assertEqual(row["query"], QUERY)
                with open(os.path.join(d, row["images"][0]), "rb") as img:
                    self.assertEqual(img.read(8), PNG[:8])

    def test_bad_formula_costs_only_itself(self):
        with tempfile.TemporaryDirectory() as out:
            with open(os.path.join(out, "f.txt"), "w") as fh:
                fh.write("a+b\n\\frac{a}{\n\\sqrt{x}\n")
            err = io.StringIO()
            with redirect_stderr(err):
                code = mld.main(["--out", out, "--formulas", os.path.join(out, "f.txt"),
                                 "--val-ratio", "0", "--workers", "1"])
            self.assertEqual(code, 0)
            self.assertIn("rejected formula 1", err.getvalue())
            with open(os.path.join(out, "latex-ocr-print", "train.jsonl")) as fh:
                self.assertEqual([json.loads(l)["response"] for l in fh], ["a+b", "\\sqrt{x}"])


class ConvertTest(unittest.TestCase):
    def test_split_and_type(self):
        self.assertEqual(conv.split_of("data/train-00000-of-00002.parquet"), "train")
        self.assertEqual(conv.split_of("validation-00000-of-00001.parquet"), "validation")
        self.assertEqual(conv.split_of("test.parquet"), "test")
        self.assertIsNone(conv.split_of("latex.parquet"))
        self.assertEqual(conv.image_extension(PNG), ".png")
        self.assertEqual(conv.image_extension(b"\xff\xd8\xff\xe0"), ".jpg")
        self.assertIsNone(conv.image_extension(b"nope"))

    def test_write_split(self):
        with tempfile.TemporaryDirectory() as out:
            err = io.StringIO()
            with redirect_stderr(err):
                n = conv.write_split(out, "train", [(PNG, " x^2 "), (b"junk", "y"), (PNG, "")])
            self.assertEqual(n, (1, 2))
            with open(os.path.join(out, "train.jsonl")) as fh:
                rows = [json.loads(l) for l in fh]
            self.assertEqual(rows, [{"query": QUERY, "response": "x^2",
                                     "images": ["images/train-000000.png"]}])
            self.assertTrue(os.path.exists(os.path.join(out, "images", "train-000000.png")))

    def test_parquet_reader_with_stub_pyarrow(self):
        """The pyarrow calls the script makes (ParquetFile.iter_batches, column().to_pylist())."""
        class Column:
            def __init__(self, values):
                self.values = values

            def to_pylist(self):
                return self.values

        class Batch:
            def __init__(self, cols):
                self.cols = cols

            def column(self, i):
                return Column(self.cols[i])

        class ParquetFile:
            def __init__(self, path):
                self.path = path

            def iter_batches(self, batch_size, columns):
                assert columns == ["image", "text"]
                yield Batch([[{"bytes": PNG, "path": None}], ["a"]])
                yield Batch([[{"bytes": PNG, "path": "x.png"}], ["b"]])

        pq = types.ModuleType("pyarrow.parquet")
        pq.ParquetFile = ParquetFile
        pa = types.ModuleType("pyarrow")
        pa.parquet = pq
        saved = {k: sys.modules.get(k) for k in ("pyarrow", "pyarrow.parquet")}
        sys.modules.update({"pyarrow": pa, "pyarrow.parquet": pq})
        try:
            with tempfile.TemporaryDirectory() as out:
                open(os.path.join(out, "train-0.parquet"), "w").close()
                open(os.path.join(out, "test-0.parquet"), "w").close()
                code = conv.main([out, "--out", os.path.join(out, "root")])
                self.assertEqual(code, 0)
                d = os.path.join(out, "root", "latex-ocr-print")
                for split in ("train", "test"):
                    with open(os.path.join(d, split + ".jsonl")) as fh:
                        self.assertEqual([json.loads(l)["response"] for l in fh], ["a", "b"])
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v

    def test_without_pyarrow_says_how_to_get_it(self):
        try:
            import pyarrow  # noqa: F401
            self.skipTest("pyarrow is installed")
        except ImportError:
            pass
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(conv.main(["x.parquet", "--out", "/nonexistent"]), 2)
        self.assertIn("pip install pyarrow", err.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=2)
