#!/usr/bin/env python3
"""Converts the hub's LaTeX_OCR parquet files (Hugging Face `linxy/LaTeX_OCR`, ModelScope
`AI-ModelScope/LaTeX_OCR`; columns `image` = {bytes, path} and `text`) to the layout vlmd's
fine-tuning jobs read:

    scripts/convert_latex_ocr.py --out DATA_ROOT [--name latex-ocr-print] PARQUET|DIR ...

writes DATA_ROOT/NAME/{train,validation,test}.jsonl with rows
    {"query": "<image>Using LaTeX to perform OCR on the image.", "response": text,
     "images": ["images/train-000000.png"]}
and the images under DATA_ROOT/NAME/images/. A job spec naming `latex-ocr-print` (or
`latex-ocr-handwrite`) then finds it under the server's data root. The split of each file comes
from its name (train-00000-of-00001.parquet -> train); `--split` overrides it.

Reading parquet needs pyarrow (`pip install pyarrow`); nothing else beyond the standard library.
"""

import argparse
import json
import os
import sys

QUERY = "<image>Using LaTeX to perform OCR on the image."
SPLITS = ("train", "validation", "test")


def image_extension(data):
    """File extension from the encoded image's magic bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data.startswith(b"BM"):
        return ".bmp"
    if data.startswith(b"GIF8"):
        return ".gif"
    return None


def split_of(path):
    """train / validation / test from a parquet file name ("val" and "dev" count as
    validation); None when the name says nothing."""
    base = os.path.basename(path).lower()
    for split, words in (("train", ("train",)), ("validation", ("validation", "val", "dev")),
                         ("test", ("test",))):
        if any(base.startswith(w + "-") or base.startswith(w + ".") or base.startswith(w + "_")
               or base == w for w in words):
            return split
    return None


def write_split(out_dir, split, rows, limit=0, start=0):
    """Writes (image_bytes, text) rows to out_dir/SPLIT.jsonl (appending) and out_dir/images/.
    Returns (written, skipped); rows with no image, an unknown image type or empty text are
    skipped and named on stderr."""
    image_dir = os.path.join(out_dir, "images")
    os.makedirs(image_dir, exist_ok=True)
    written = skipped = 0
    with open(os.path.join(out_dir, split + ".jsonl"), "a", encoding="utf-8") as fh:
        for n, (data, text) in enumerate(rows):
            if limit and written >= limit:
                break
            ext = image_extension(data) if data else None
            text = (text or "").strip()
            if ext is None or not text:
                print(f"convert_latex_ocr: {split} row {n}: skipped "
                      f"({'no text' if ext else 'no image or unknown image type'})",
                      file=sys.stderr)
                skipped += 1
                continue
            name = "images/%s-%06d%s" % (split, start + written, ext)
            with open(os.path.join(out_dir, name), "wb") as img:
                img.write(data)
            row = {"query": QUERY, "response": text, "images": [name]}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
    return written, skipped


def parquet_rows(path):
    """(image bytes, text) per row of a LaTeX_OCR parquet file, read in record batches."""
    import pyarrow.parquet as pq  # only here: the rest of the script needs no pyarrow

    reader = pq.ParquetFile(path)
    for batch in reader.iter_batches(batch_size=256, columns=["image", "text"]):
        images = batch.column(0).to_pylist()
        texts = batch.column(1).to_pylist()
        for image, text in zip(images, texts):
            data = image.get("bytes") if isinstance(image, dict) else image
            yield data, text


def find_parquet(inputs):
    files = []
    for item in inputs:
        if os.path.isdir(item):
            for root, _, names in sorted(os.walk(item)):
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".parquet")]
        else:
            files.append(item)
    return files


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="parquet files or folders holding them")
    p.add_argument("--out", required=True, help="data root; the set goes to OUT/NAME/")
    p.add_argument("--name", default="latex-ocr-print",
                   help="latex-ocr-print (printed) or latex-ocr-handwrite (default %(default)s)")
    p.add_argument("--split", choices=SPLITS, help="split for every input (default: by name)")
    p.add_argument("--limit", type=int, default=0, help="rows per split at most (0 = all)")
    args = p.parse_args(argv)
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        print("convert_latex_ocr: reading parquet needs pyarrow: pip install pyarrow",
              file=sys.stderr)
        return 2
    files = find_parquet(args.inputs)
    if not files:
        print("convert_latex_ocr: no .parquet files in the inputs", file=sys.stderr)
        return 2
    out_dir = os.path.join(args.out, args.name)
    os.makedirs(out_dir, exist_ok=True)
    for split in SPLITS:  # start from empty files: write_split appends across input files
        path = os.path.join(out_dir, split + ".jsonl")
        if os.path.exists(path):
            os.remove(path)
    totals = {}
    for path in files:
        split = args.split or split_of(path) or "train"
        done = totals.get(split, 0)
        limit = args.limit - done if args.limit else 0
        if args.limit and limit <= 0:
            continue
        written, skipped = write_split(out_dir, split, parquet_rows(path), limit, start=done)
        totals[split] = done + written
        print(f"convert_latex_ocr: {path}: {written} rows -> {split}.jsonl"
              + (f" ({skipped} skipped)" if skipped else ""))
    if "train" not in totals:
        print("convert_latex_ocr: warning: no train split written; a job naming this set "
              "needs train.jsonl", file=sys.stderr)
    print(f"convert_latex_ocr: {out_dir}: " +
          ", ".join(f"{s} {totals[s]}" for s in SPLITS if s in totals))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
