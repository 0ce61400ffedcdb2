#!/usr/bin/env python3
"""Produces the parity fixtures (tests/fixtures/) for vlmd's C++ tests on the GPU machine.

  python3 tests/reference/make_fixtures.py --out $OUT/fixtures --tar $OUT/fixtures.tgz

Run from the repository root (the real tokenizer is read from
third_party/tokenizer/tokenizer.json). Sections: images, preprocess, tokenizer, models, parity,
lora (default: all, in that order; --sections picks some; later sections reuse what earlier
ones wrote under --out). Each section runs inside its own try/except; every check is recorded
in MANIFEST.json and in the summary printed at the end. Details go to the log file
(<out>.log by default), not to stdout. The exit code is 0 unless --strict and a check failed.
See tests/reference/README.md for the fixture formats.
"""

import argparse
import copy
import datetime
import io
import json
import logging
import math
import os
import shutil
import sys
import tarfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402
from common import log, say  # noqa: E402

ALL_SECTIONS = ["images", "preprocess", "tokenizer", "models", "parity", "lora"]
SEED = 20261125
MAX_CASE_BYTES = 400_000
PV_HEAD_ROWS = 8

# ----------------------------------------------------------------------------------------------
# Model shapes (tiny). Special ids follow the Qwen2 order: bos=<|endoftext|>, eos=<|im_end|>.
# ----------------------------------------------------------------------------------------------


def _special(base):
    return {"bos": base, "im_start": base + 1, "eos": base + 2, "vision_start": base + 3,
            "vision_end": base + 4, "vision_pad": base + 5, "image": base + 6, "video": base + 7}


MODEL_SHAPES = {
    "gqa_tied": dict(
        vocab_size=1024, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, mrope_section=[2, 3, 3],
        tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6,
        vision=dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2),
        # the brief's ids: bos 1000, eos 1001, vision_start 1002, vision_end 1003,
        # vision_pad 1004, image 1005, video 1006; <|im_start|> 1007.
        special={"bos": 1000, "eos": 1001, "vision_start": 1002, "vision_end": 1003,
                 "vision_pad": 1004, "image": 1005, "video": 1006, "im_start": 1007},
        tokenizer_base_vocab=1000, storage_dtype="bfloat16", layout="hub", config_style="flat",
        seed=SEED + 1),
    "mha_untied": dict(
        vocab_size=777, hidden_size=96, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=3, num_key_value_heads=3, mrope_section=[4, 6, 6],
        tie_word_embeddings=False, rope_theta=10000.0, rms_norm_eps=1e-6,
        vision=dict(depth=3, embed_dim=48, num_heads=3, mlp_ratio=4),
        special=_special(760), tokenizer_base_vocab=760, storage_dtype="bfloat16",
        layout="hub", config_style="save_pretrained", seed=SEED + 2),
    "deep_new_layout": dict(
        vocab_size=2048, hidden_size=128, intermediate_size=96, num_hidden_layers=5,
        num_attention_heads=8, num_key_value_heads=1, mrope_section=[2, 3, 3],
        tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6,
        vision=dict(depth=2, embed_dim=64, num_heads=4, mlp_ratio=2),
        special=_special(2000), tokenizer_base_vocab=2000, storage_dtype="bfloat16",
        layout="new", config_style="4.5x", seed=SEED + 3),
}

SPECIAL_STRINGS = {"bos": common.TOK_ENDOFTEXT, "im_start": common.TOK_IM_START,
                   "eos": common.TOK_IM_END, "vision_start": common.TOK_VISION_START,
                   "vision_end": common.TOK_VISION_END, "vision_pad": common.TOK_VISION_PAD,
                   "image": common.TOK_IMAGE_PAD, "video": common.TOK_VIDEO_PAD}

# ----------------------------------------------------------------------------------------------
# Check bookkeeping
# ----------------------------------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.items = []
        self.sections = {}
        self.facts = {}
        self.section = "-"

    def add(self, name, ok, **numbers):
        status = "PASS" if ok is True else ("FAIL" if ok is False else str(ok))
        item = {"section": self.section, "name": name, "status": status}
        item.update({k: _jsonable(v) for k, v in numbers.items()})
        self.items.append(item)
        log("CHECK %s [%s] %s %s" % (status, self.section, name,
                                     json.dumps({k: item[k] for k in numbers}, default=str)[:2000]))
        return ok

    def fact(self, key, value):
        self.facts[key] = _jsonable(value)
        log("FACT %s = %s" % (key, json.dumps(self.facts[key], default=str)[:4000]))


def _jsonable(v):
    try:
        json.dumps(v, allow_nan=False)
        return v
    except (TypeError, ValueError):
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, dict):
            return {str(k): _jsonable(x) for k, x in v.items()}
        if isinstance(v, (list, tuple, set)):
            return [_jsonable(x) for x in v]
        return repr(v)


CHECKS = Checks()


class _StderrToLog(io.TextIOBase):
    def __init__(self, logger):
        self.logger = logger

    def write(self, s):
        if s and s.strip():
            self.logger.log("[stderr] " + s.rstrip("\n"))
        return len(s)

    def flush(self):
        pass


# ----------------------------------------------------------------------------------------------
# Section: images
# ----------------------------------------------------------------------------------------------

def _rng(seed):
    import numpy as np
    return np.random.default_rng(seed)


def _draw_glyphs(draw, rng, x0, x1, y_mid, size, color=0, width=4, vertical=False, y1=None):
    """LaTeX-looking strokes: letters (connected polylines/arcs), fraction bars with numerator
    and denominator, radicals, superscripts, parentheses."""
    def glyph(cx, cy, s):
        kind = int(rng.integers(0, 5))
        if kind == 0:  # polyline letter
            pts = [(cx + float(rng.uniform(-s / 2, s / 2)), cy + float(rng.uniform(-s / 2, s / 2)))
                   for _ in range(int(rng.integers(3, 6)))]
            draw.line(pts, fill=color, width=width, joint="curve")
        elif kind == 1:  # arc letter
            a0 = float(rng.uniform(0, 360))
            draw.arc([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2], a0, a0 + float(rng.uniform(180, 330)),
                     fill=color, width=width)
        elif kind == 2:  # letter with a stem
            draw.line([(cx - s / 3, cy - s / 2), (cx - s / 3, cy + s / 2)], fill=color, width=width)
            draw.arc([cx - s / 3, cy - s / 6, cx + s / 3, cy + s / 2], 180, 450, fill=color, width=width)
        elif kind == 3:  # cross / plus / equals
            draw.line([(cx - s / 2, cy - s / 8), (cx + s / 2, cy - s / 8)], fill=color, width=width)
            draw.line([(cx - s / 2, cy + s / 8), (cx + s / 2, cy + s / 8)], fill=color, width=width)
        else:  # parenthesis
            draw.arc([cx - s / 4, cy - s * 0.7, cx + s, cy + s * 0.7], 110, 250, fill=color, width=width)

    if not vertical:
        x = x0
        while x < x1 - size:
            kind = int(rng.integers(0, 6))
            if kind == 0:  # fraction
                w = size * float(rng.uniform(1.5, 3.0))
                draw.line([(x, y_mid), (x + w, y_mid)], fill=color, width=max(2, width // 2))
                glyph(x + w / 2, y_mid - size * 0.75, size * 0.6)
                glyph(x + w / 2, y_mid + size * 0.75, size * 0.6)
                x += w + size * 0.4
            elif kind == 1:  # radical
                w = size * float(rng.uniform(1.2, 2.5))
                draw.line([(x, y_mid), (x + size * 0.2, y_mid + size * 0.5), (x + size * 0.45, y_mid - size * 0.8),
                           (x + size * 0.45 + w, y_mid - size * 0.8)], fill=color, width=width)
                glyph(x + size * 0.45 + w / 2, y_mid, size * 0.7)
                x += w + size * 0.8
            elif kind == 2:  # superscript
                glyph(x + size / 2, y_mid, size)
                glyph(x + size * 1.2, y_mid - size * 0.6, size * 0.5)
                x += size * 1.7
            else:
                glyph(x + size / 2, y_mid + float(rng.uniform(-size * 0.1, size * 0.1)), size)
                x += size * float(rng.uniform(1.0, 1.4))
    else:
        y = y_mid
        while y < y1 - size:
            glyph((x0 + x1) / 2, y + size / 2, size)
            y += size * float(rng.uniform(1.1, 1.5))


def _res(name):
    from PIL import Image
    return getattr(getattr(Image, "Resampling", Image), name)


def make_formula(w, h, seed, ink=(0, 0, 0), paper=(255, 255, 255), vertical=False):
    """RGB formula-like image, drawn at 4x and box-downsampled (anti-aliased strokes)."""
    from PIL import Image, ImageDraw
    S = 4
    im = Image.new("RGB", (w * S, h * S), paper)
    d = ImageDraw.Draw(im)
    rng = _rng(seed)
    if vertical:
        _draw_glyphs(d, rng, 0, w * S, h * S * 0.02, w * S * 0.45, color=ink, width=S * 2,
                     vertical=True, y1=h * S * 0.98)
    else:
        _draw_glyphs(d, rng, w * S * 0.02, w * S * 0.98, h * S / 2, h * S * 0.28, color=ink,
                     width=S * 2)
    return im.resize((w, h), _res("BOX"))


def make_photo(w, h, seed, noise_block=True):
    """Smooth gradients + anti-aliased shapes + one noisy block (keeps the PNG small)."""
    import numpy as np
    from PIL import Image, ImageDraw
    rng = _rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 60 + 150 * (y / h)
    g = 90 + 100 * (x / w)
    b = 200 - 120 * (y / h) * (x / w)
    bg = np.clip(np.round(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)
    S = 2
    im = Image.fromarray(bg).resize((w * S, h * S), _res("NEAREST"))
    d = ImageDraw.Draw(im)
    for i in range(25):
        cx, cy = (int(v) for v in rng.integers(0, [w * S, h * S]))
        rr = int(rng.integers(max(4, w * S // 80), max(8, w * S // 10)))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        if i % 3 == 0:
            d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=col)
        elif i % 3 == 1:
            d.rectangle([cx - rr, cy - rr // 2, cx + rr, cy + rr // 2], fill=col)
        else:
            d.polygon([(cx, cy - rr), (cx + rr, cy + rr), (cx - rr, cy + rr)], fill=col)
    im = im.resize((w, h), _res("BOX"))
    a = np.asarray(im).astype(np.float32)
    if noise_block:
        bh, bw = h // 4, w // 5
        y0, x0 = h // 3, (w * 5) // 8
        a[y0:y0 + bh, x0:x0 + bw] += rng.normal(0, 20, (bh, bw, 3))
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "RGB")


def build_images(out):
    """Writes images/*.png|jpg and images/index.json. Returns the index list."""
    import numpy as np
    from PIL import Image
    d = os.path.join(out, "images")
    os.makedirs(d, exist_ok=True)
    idx = []

    def save(name, im, **kw):
        p = os.path.join(d, name)
        im.save(p, **kw)
        idx.append({"file": "images/" + name, "saved_mode": im.mode, "width": im.size[0],
                    "height": im.size[1]})
        return p

    strip = make_formula(769, 76, SEED + 10)
    save("formula_769x76_rgb.png", strip)
    save("formula_347x76_l.png", make_formula(347, 76, SEED + 11).convert("L"))
    colored = make_formula(176, 53, SEED + 12, ink=(20, 40, 160), paper=(250, 245, 225))
    pimg = colored.quantize(colors=8, method=0, dither=0)  # MEDIANCUT, no dither
    save("formula_176x53_p.png", pimg)
    # RGBA with varying alpha; RGB under alpha 0 is still coloured (convert("RGB") keeps it)
    base = make_photo(300, 200, SEED + 13, noise_block=False)
    ys, xs = np.mgrid[0:200, 0:300]
    alpha = (xs * 255 // 299).astype(np.uint8)
    alpha[(ys - 100) ** 2 + (xs - 220) ** 2 < 40 ** 2] = 0
    rgba = np.dstack([np.asarray(base), alpha]).astype(np.uint8)
    save("shapes_300x200_rgba.png", Image.fromarray(rgba, "RGBA"))
    # LA
    la_l = np.asarray(make_formula(120, 90, SEED + 14).convert("L"))
    la_a = np.clip(255 - (np.mgrid[0:90, 0:120][0] * 2), 0, 255).astype(np.uint8)
    save("formula_120x90_la.png", Image.fromarray(np.dstack([la_l, la_a]).astype(np.uint8), "LA"))
    photo = make_photo(1600, 1200, SEED + 15)
    save("photo_1600x1200.png", photo)
    tiny = Image.fromarray(_rng(SEED + 16).integers(0, 256, (15, 20, 3)).astype(np.uint8), "RGB")
    save("tiny_20x15.png", tiny)
    save("tall_60x900.png", make_formula(60, 900, SEED + 17, vertical=True))
    crop = strip.crop((200, 10, 312, 66))
    save("crop_112x56.png", crop)
    # 16-bit grayscale
    g16 = ((np.mgrid[0:48, 0:64][1] * 1040 + np.mgrid[0:48, 0:64][0] * 7) % 65536).astype(np.uint16)
    g16[:8, :8] = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4  # values < 256 too
    try:
        im16 = Image.fromarray(g16)
        save("gray16_64x48.png", im16)
        CHECKS.add("wrote 16-bit PNG", True, mode=im16.mode)
    except Exception as e:  # noqa: BLE001
        CHECKS.add("wrote 16-bit PNG", "SKIP", error=repr(e))
    jpg_src = make_photo(640, 480, SEED + 18)
    save("photo_640x480.jpg", jpg_src, quality=90)
    # decode facts for every file (what PIL gives after convert("RGB"))
    from PIL import features
    for e in idx:
        p = os.path.join(out, e["file"])
        im = common.open_image(p)
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        e["opened_mode"] = im.mode
        e["rgb_sha256"] = __import__("hashlib").sha256(rgb.tobytes()).hexdigest()
        e["rgb_sum"] = int(rgb.astype(np.int64).sum())
        e["bytes"] = os.path.getsize(p)
        if p.endswith(".jpg"):
            e["jpeg_decoder"] = {
                "pillow": __import__("PIL").__version__,
                "libjpeg_version": features.version("jpg"),
                "libjpeg_turbo": features.check_feature("libjpeg_turbo"),
                "subsampling": _jpeg_subsampling(im),
                "note": "PIL decodes with libjpeg(-turbo), default DCT and fancy upsampling",
            }
    common.write_json(os.path.join(d, "index.json"), idx)
    for e in idx:
        CHECKS.add("image " + e["file"], True, mode=e["opened_mode"], size=[e["width"], e["height"]],
                   bytes=e["bytes"])
    big = [e for e in idx if e["file"].endswith("photo_1600x1200.png")][0]
    CHECKS.add("photo PNG < 1.5 MB", big["bytes"] < 1_500_000, bytes=big["bytes"])
    return idx


def _jpeg_subsampling(im):
    try:
        from PIL import JpegImagePlugin
        return JpegImagePlugin.get_sampling(im)
    except Exception:  # noqa: BLE001
        return None


# ----------------------------------------------------------------------------------------------
# Section: preprocess
# ----------------------------------------------------------------------------------------------

OPTION_SETS = [("default", 3136, 1003520), ("small", 4 * 28 * 28, 64 * 28 * 28),
               ("large", 3136, 12845056)]


def section_preprocess(out):
    import numpy as np
    import torch
    from PIL import Image
    idx_path = os.path.join(out, "images", "index.json")
    if not os.path.exists(idx_path):
        raise RuntimeError("images/index.json missing: run the images section first")
    idx = common.read_json(idx_path)
    d = os.path.join(out, "preprocess")
    os.makedirs(d, exist_ok=True)
    cases = []
    n_exact = n_cases = 0
    for e in idx:
        path = os.path.join(out, e["file"])
        stem = os.path.splitext(os.path.basename(e["file"]))[0]
        seen = {}
        for opt, mn, mx in OPTION_SETS:
            im = common.open_image(path)
            w, h = im.size
            try:
                rh, rw = common.smart_resize(h, w, 28, mn, mx)
            except Exception as ex:  # noqa: BLE001
                rh = rw = None
                log("smart_resize %s: %r" % (e["file"], ex))
            if (rh, rw) in seen:
                log("skip %s %s: same size as %s" % (e["file"], opt, seen[(rh, rw)]))
                continue
            seen[(rh, rw)] = opt
            n_cases += 1
            case = {"image": e["file"], "mode": im.mode, "options": opt, "min_pixels": mn,
                    "max_pixels": mx, "width": w, "height": h,
                    "spec_resized_hw": [rh, rw] if rh else None}
            # 1) the processor
            pv = thw = None
            try:
                pv, thw, how = common.preprocess_images([path], mn, mx)
                case["processor"] = how
                case["grid_thw"] = [int(v) for v in thw[0].tolist()]
                case["num_patches"] = int(pv.shape[0])
                case["pixel_values_head"] = [[common.f32_json(v) for v in row]
                                             for row in pv[:PV_HEAD_ROWS].tolist()]
                case["pixel_values_sum"] = float(pv.double().sum())
                case["pixel_values_abs_sum"] = float(pv.double().abs().sum())
            except Exception as ex:  # noqa: BLE001
                case["processor_error"] = repr(ex)
                log("processor failed on %s %s:\n%s" % (e["file"], opt, traceback.format_exc()))
            gh = gw = None
            if thw is not None:
                gh, gw = int(thw[0, 1]), int(thw[0, 2])
                case["resized_hw"] = [gh * 14, gw * 14]
                CHECKS.add("grid = spec smart_resize/14 %s %s" % (stem, opt),
                           rh is not None and (gh * 14, gw * 14) == (rh, rw) and int(thw[0, 0]) == 1,
                           grid=case["grid_thw"], spec_hw=[rh, rw])
            # 2) own pipeline: uint8 bicubic-AA resize, fused normalize, patch order
            th, tw = (gh * 14, gw * 14) if gh else (rh, rw)
            if th:
                try:
                    r8 = common.resize_u8_reference(im, th, tw)
                    fname = "preprocess/%s_%d_%d.png" % (stem, mn, mx)
                    Image.fromarray(r8.permute(1, 2, 0).numpy(), "RGB").save(os.path.join(out, fname))
                    back = torch.from_numpy(np.array(Image.open(os.path.join(out, fname)).convert("RGB"))).permute(2, 0, 1)
                    assert torch.equal(back, r8), "PNG round trip changed pixels"
                    case["resized_file"] = fname
                    case["resized_sha256"] = __import__("hashlib").sha256(
                        r8.permute(1, 2, 0).contiguous().numpy().tobytes()).hexdigest()
                    if pv is not None:
                        best = None
                        for variant in ("f32", "f64"):
                            mine, _ = common.patchify(common.normalize_u8(r8, variant))
                            if mine.shape != pv.shape:
                                diff = float("inf")
                            else:
                                diff = float((mine - pv).abs().max())
                            case["max_abs_diff_" + variant] = diff
                            if best is None or diff < best[1]:
                                best = (variant, diff)
                        case["normalize_variant"] = best[0]
                        if best[1] != 0.0:
                            case["mismatch"] = best[1]
                            say("  !! preprocess mismatch %s %s: max_abs_diff=%g" % (stem, opt, best[1]))
                        else:
                            n_exact += 1
                        CHECKS.add("uint8 resize+normalize+patchify == processor %s %s" % (stem, opt),
                                   best[1] == 0.0, max_abs_diff=best[1], variant=best[0],
                                   grid=case.get("grid_thw"))
                except Exception as ex:  # noqa: BLE001
                    case["reference_error"] = repr(ex)
                    log("reference pipeline failed on %s %s:\n%s" % (e["file"], opt, traceback.format_exc()))
                    CHECKS.add("reference pipeline %s %s" % (stem, opt), False, error=repr(ex))
            if "processor_error" in case:
                CHECKS.add("processor ran %s %s" % (stem, opt), "WARN" if "gray16" in stem else False,
                           error=case["processor_error"])
            cases.append(case)
    common.write_json(os.path.join(d, "cases.json"),
                      {"mean": common.OPENAI_CLIP_MEAN, "std": common.OPENAI_CLIP_STD,
                       "note": "pixel_values = patchify((float32(u8 resized) - 255*mean)/(255*std)); "
                               "see tests/reference/README.md",
                       "cases": cases}, indent=None)
    CHECKS.add("preprocess cases exact", n_exact == n_cases, exact=n_exact, cases=n_cases)


# ----------------------------------------------------------------------------------------------
# Section: tokenizer
# ----------------------------------------------------------------------------------------------

DEFAULT_CORPUS = [
    "", " ", "  ", "a", "Hello, world!", "hello world", "Hello World", "HELLO",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it, isn't it? We'd, I'd, she's, THEY'RE, You'LL",
    "\\frac{a+b}{c^{2}} = \\sqrt{x_{1}^{2}+x_{2}^{2}}",
    "\\begin{aligned} E &= mc^2 \\\\ \\int_0^\\infty e^{-x^2}\\,dx &= \\frac{\\sqrt{\\pi}}{2} \\end{aligned}",
    "$\\mathbb{R}^{n \\times m}$, \\alpha\\beta\\gamma, \\left( \\sum_{i=1}^{N} i \\right)",
    "你好，世界！今天天气很好。", "日本語のテキストとカタカナ", "한국어 문장입니다",
    "Привет, мир", "مرحبا بالعالم", "שלום", "Ελληνικά", "हिन्दी",
    "emoji 😀👍🏽 and ZWJ 👨‍👩‍👧‍👦 flags 🇩🇪🇯🇵",
    "   leading spaces", "trailing spaces   ", "a  b   c    d", "tabs\tand\t\ttabs",
    "line1\nline2\n\nline4", "windows\r\nline\r\n", "\n\n\n", " \n \n ", "mixed \t\n\r\n end",
    "non\u00a0breaking\u00a0space", "zero\u200bwidth", "e\u0301 vs \u00e9", "A\u030a vs \u00c5",
    "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ", "12345678901234567890", "3.14159 2,718 1e-10 0x1F",
    "1+1=2; 10*10=100", "def f(x):\n    return x**2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }", "{\"key\": [1, 2, 3], \"v\": null}",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe.",
    "<|endoftext|>", "text<|im_end|>text", "<|im_start|", "<|unknown|>",
    "https://example.com/path?q=1&r=2", "user@example.com", "CamelCaseWordsAndsnake_case_words",
    "'s 't 're 've 'm 'll 'd", "don't DON'T Don'T", "...!!!???", "---===+++", "§±×÷≤≥≠∞∑∏√∂∇",
]


def real_tokenizer_path(arg):
    for p in [arg, os.path.join(os.getcwd(), "third_party/tokenizer/tokenizer.json"),
              os.path.join(REPO, "third_party/tokenizer/tokenizer.json")]:
        if p and os.path.isfile(p):
            return p
    raise RuntimeError("third_party/tokenizer/tokenizer.json not found (run from the repo root "
                       "or pass --tokenizer)")


TEMPLATE_MESSAGES = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are a LaTeX OCR engine."},
     {"role": "user", "content": [{"type": "image", "image": "images/crop_112x56.png"},
                                  {"type": "text", "text": "Transcribe the formula."}]},
     {"role": "assistant", "content": "\\frac{a}{b}"},
     {"role": "user", "content": [{"type": "text", "text": "And these two?"},
                                  {"type": "image", "image": "images/tiny_20x15.png"},
                                  {"type": "image", "image": "images/formula_176x53_p.png"}]}],
    [{"role": "user", "content": [{"type": "text", "text": "First "}, {"type": "text", "text": "second"}]},
     {"role": "assistant", "content": [{"type": "text", "text": "ok 你好"}]},
     {"role": "user", "content": "  spaces\n\nand newlines  "}],
]


def section_tokenizer(out, tok_arg):
    from tokenizers import Tokenizer
    path = real_tokenizer_path(tok_arg)
    tok = Tokenizer.from_file(path)
    corpus_file = os.path.join(HERE, "tokenizer_corpus.json")
    if os.path.exists(corpus_file):
        corpus = common.read_json(corpus_file)
        src = "tests/reference/tokenizer_corpus.json"
    else:
        corpus = DEFAULT_CORPUS
        src = "make_fixtures.DEFAULT_CORPUS"
    cases = []
    n_rt = 0
    import unicodedata
    for s in corpus:
        ids = tok.encode(s, add_special_tokens=False).ids
        dec = tok.decode(ids, skip_special_tokens=False)
        cases.append({"text": s, "ids": ids, "decoded": dec,
                      "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
        n_rt += dec == unicodedata.normalize("NFC", s)
    tcases = []
    for msgs in TEMPLATE_MESSAGES:
        text, images = common.render_chat(msgs, add_generation_prompt=True)
        tcases.append({"messages": msgs, "add_generation_prompt": True, "text": text,
                       "images": images, "ids": tok.encode(text, add_special_tokens=False).ids})
    # the spec §5.1 example must start with the ids of TM
    t0 = tcases[0]["ids"][:9]
    CHECKS.add("template head ids = spec §5.1 TM ids", t0 == [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13],
               got=t0)
    d = os.path.join(out, "tokenizer")
    os.makedirs(d, exist_ok=True)
    common.write_json(os.path.join(d, "cases.json"),
                      {"tokenizer": "third_party/tokenizer/tokenizer.json",
                       "tokenizer_sha256": common.sha256_file(path), "corpus_source": src,
                       "cases": cases, "template_cases": tcases}, indent=1)
    CHECKS.add("tokenizer cases", True, n=len(cases), decode_equals_nfc_text=n_rt,
               template_cases=len(tcases))


def build_tiny_tokenizer(real_path, shape, out_path):
    """A tokenizer.json for a tiny model: the real Qwen2 pipeline (NFC, Split regex, byte level)
    with the first `tokenizer_base_vocab` vocabulary entries, the merges among them (merge k
    makes id 256+k in Qwen2's file), and the special tokens at the shape's ids."""
    d = common.read_json(real_path)
    base = int(shape["tokenizer_base_vocab"])
    vocab = {t: i for t, i in d["model"]["vocab"].items() if i < base}
    if sorted(vocab.values()) != list(range(base)):
        raise RuntimeError("real vocab ids are not dense below %d" % base)
    merges = []
    for m in d["model"]["merges"]:
        a, b = (m.split(" ", 1) if isinstance(m, str) else m)
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(m)
    added = []
    for key, content in SPECIAL_STRINGS.items():
        added.append({"id": int(shape["special"][key]), "content": content, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    added.sort(key=lambda x: x["id"])
    new = dict(d)
    new["added_tokens"] = added
    new["model"] = dict(d["model"], vocab=vocab, merges=merges)
    new["truncation"] = None
    new["padding"] = None
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(new, f, ensure_ascii=False)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(out_path)
    bad = []
    for key, content in SPECIAL_STRINGS.items():
        if tok.token_to_id(content) != shape["special"][key]:
            bad.append("%s -> %r" % (content, tok.token_to_id(content)))
    probe = ["Hello world, 你好 😀 \\frac{a}{b}\n", "<|im_start|>user\nhi<|im_end|>\n"]
    for s in probe:
        ids = tok.encode(s, add_special_tokens=False).ids
        if max(ids) >= shape["vocab_size"]:
            bad.append("id %d >= vocab" % max(ids))
        if tok.decode(ids, skip_special_tokens=False) != s:
            bad.append("round trip %r" % s)
    return len(vocab), len(merges), bad


# ----------------------------------------------------------------------------------------------
# Section: models
# ----------------------------------------------------------------------------------------------

def probe_inputs(shape, seed):
    """Synthetic request for load checks: text, one 4x4-patch image (4 tokens), text."""
    import torch
    s = shape["special"]
    g = torch.Generator().manual_seed(seed)
    txt = torch.randint(0, shape["tokenizer_base_vocab"], (12,), generator=g).tolist()
    ids = [s["im_start"]] + txt[:5] + [s["vision_start"]] + [s["image"]] * 4 + [s["vision_end"]] + txt[5:] + [s["eos"]]
    input_ids = torch.tensor([ids])
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "pixel_values": torch.randn(16, 1176, generator=g),
            "image_grid_thw": torch.tensor([[1, 4, 4]]),
            "mm_token_type_ids": (input_ids == s["image"]).long()}


def logits_of(model, inputs):
    import torch
    common.reset_rope_cache(model)
    with torch.no_grad():
        try:
            return model(**inputs, use_cache=False, return_dict=True).logits[0].float()
        except TypeError:
            d = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
            return model(**d, use_cache=False, return_dict=True).logits[0].float()


def verify_load(name, model, shape, model_dir, probe):
    """from_pretrained(model_dir) must give the same weights and bit-identical logits."""
    loaded, info, how = common.load_pretrained(model_dir)
    bad_keys = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    if shape["tie_word_embeddings"] and bad_keys.get("missing_keys") == ["lm_head.weight"]:
        CHECKS.fact("%s: from_pretrained lists lm_head.weight as missing (tied)" % name, True)
        bad_keys.pop("missing_keys")
    CHECKS.add("%s loads with from_pretrained (no missing/unexpected keys)" % name, not bad_keys,
               loading_info=bad_keys, how=how)
    mism = common.check_config_matches(loaded.config, shape)
    CHECKS.add("%s loaded config matches shape" % name, not mism, mismatches=mism)
    CHECKS.add("%s loaded tie state" % name, common.is_tied(loaded) == shape["tie_word_embeddings"],
               tied=common.is_tied(loaded))
    worst, worst_name, only1, only2 = common.state_dict_diff(model, loaded)
    CHECKS.add("%s loaded weights == in-memory" % name, worst == 0.0 and not only1 and not only2,
               max_abs=worst, worst=worst_name, only_in_memory=only1[:5], only_loaded=only2[:5])
    l1 = logits_of(model, probe)
    l2 = logits_of(loaded, probe)
    diff = float((l1 - l2).abs().max())
    CHECKS.add("%s logits bit-identical after reload" % name, diff == 0.0, max_abs=diff,
               attn=[common.config_readback(model.config)["attn_implementation"],
                     common.config_readback(loaded.config)["attn_implementation"]])
    return loaded, (worst == 0.0 and diff == 0.0)


def check_rotary_theta(name, model, shape):
    import torch
    rname, rot = None, None
    for n, m in model.named_modules():
        if n.endswith("rotary_emb") and "visual" not in n:
            rname, rot = n, m
            break
    inv = getattr(rot, "inv_freq", None) if rot is not None else None
    if inv is None:
        CHECKS.add("%s LLM inv_freq uses rope_theta" % name, "SKIP", reason="no inv_freq found")
        return
    hd = shape["hidden_size"] // shape["num_attention_heads"]
    exp = 1.0 / (float(shape["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    diff = float((inv.float().cpu() - exp).abs().max())
    CHECKS.add("%s LLM inv_freq uses rope_theta" % name, diff <= 1e-7 * float(exp.abs().max()) + 1e-12,
               max_abs=diff, module=rname)


def generation_config_for(shape, extra_eos=None):
    s = shape["special"]
    eos = [s["eos"], s["bos"]]
    if extra_eos is not None:
        eos.append(int(extra_eos))
    return {"bos_token_id": s["bos"], "eos_token_id": eos, "pad_token_id": s["bos"],
            "do_sample": False, "transformers_version": "4.41.2"}


def stop_probe_token(model, shape, request_ids):
    """A token that greedy decoding emits for the first time at step >= 4 (so a generation
    config listing it as eos stops with finish_reason "stop")."""
    import torch
    ids = torch.tensor([request_ids])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "mm_token_type_ids": torch.zeros_like(ids)}
    g = common.greedy(model, inputs, 12, 1, [], None)
    seq = g["token_ids"]
    specials = set(shape["special"].values())
    for i, t in enumerate(seq):
        if i >= 4 and t not in seq[:i] and t not in specials:
            return t, i, seq
    return None, None, seq


def section_models(out, tok_arg, work):
    real_tok = None
    try:
        real_tok = real_tokenizer_path(tok_arg)
    except Exception as e:  # noqa: BLE001
        CHECKS.add("real tokenizer for tiny tokenizers", False, error=repr(e))
    mroot = os.path.join(out, "models")
    os.makedirs(mroot, exist_ok=True)
    for name, shape in MODEL_SHAPES.items():
        CHECKS.section = "models/" + name
        try:
            _one_model(name, shape, mroot, real_tok, work)
        except Exception as e:  # noqa: BLE001
            log(traceback.format_exc())
            CHECKS.add("%s built" % name, False, error=repr(e), where=_where())
    CHECKS.section = "models"


def _where():
    tb = traceback.extract_tb(sys.exc_info()[2])
    return ["%s:%d %s" % (os.path.basename(f.filename), f.lineno, f.name) for f in tb[-3:]]


def _one_model(name, shape, mroot, real_tok, work):
    import torch
    d = os.path.join(mroot, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model, info = common.create_model(shape, shape["seed"])
    CHECKS.add("%s config (%s) as intended" % (name, info["config_path"]), not info["config_mismatches"],
               mismatches=info["config_mismatches"])
    CHECKS.add("%s tie state" % name, info["tied"] == shape["tie_word_embeddings"], tied=info["tied"])
    CHECKS.add("%s init sane (no param needed a fix)" % name, not info["fixed_params"],
               fixed=info["fixed_params"], perturbed=info["perturbed"], n_params=info["n_params"])
    CHECKS.fact("%s in-memory state_dict names (first 6)" % name, sorted(model.state_dict())[:6])
    pe = [v for k, v in model.state_dict().items() if k.endswith("patch_embed.proj.weight")]
    CHECKS.fact("%s in-memory patch_embed weight shape" % name, list(pe[0].shape) if pe else None)
    check_rotary_theta(name, model, shape)
    probe = probe_inputs(shape, shape["seed"] + 100)
    dt = shape["storage_dtype"]
    # weights + config
    if shape["config_style"] == "flat":
        cfgd = common.flat_config_dict(shape, torch_dtype=dt)
    elif shape["config_style"] == "4.5x":
        cfgd = common.config_45x_dict(shape, torch_dtype=dt)
    else:  # what 5.17's save_pretrained writes for a model of this dtype
        tmp = os.path.join(work, "save_pretrained_" + name)
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        m2 = copy.deepcopy(model).to({"float32": torch.float32, "bfloat16": torch.bfloat16}[dt])
        m2.save_pretrained(tmp)
        cfgd = common.read_json(os.path.join(tmp, "config.json"))
        keys = common.safetensors_keys(tmp)
        CHECKS.fact("%s: tensor names 5.17 save_pretrained writes (%d)" % (name, len(keys)),
                    {k: keys[k] for k in sorted(keys)[:8]})
        CHECKS.fact("%s: 5.17 save_pretrained files" % name, sorted(os.listdir(tmp)))
        CHECKS.add("%s 5.17 save_pretrained writes hub names (visual.*, model.*)" % name,
                   "INFO" if any(k.startswith("model.language_model.") for k in keys) else True,
                   names_sample=sorted(keys)[:4], patch_embed=[v for k, v in keys.items() if "patch_embed" in k])
        CHECKS.fact("%s: config.json written by save_pretrained" % name, cfgd)
        del m2
    if shape["layout"] == "hub":
        names, problems = common.write_hub_layout(model, shape, d, cfgd, dt)
    else:
        # transformers 5.17 keeps the Conv3d patch embed (5-D) and refuses the 2-D form
        # (first GPU run, 2026-11-25); vlmd's 2-D loading is covered by its own unit tests.
        names, problems = common.write_new_layout(model, shape, d, cfgd, dt, shards=2, patch_2d=False)
    CHECKS.add("%s tensor names/shapes = spec §2.1 (%s layout)" % (name, shape["layout"]), not problems,
               problems=problems[:10], n=len(names))
    # tokenizer / generation / preprocessor configs
    if real_tok:
        nv, nm, bad = build_tiny_tokenizer(real_tok, shape, os.path.join(d, "tokenizer.json"))
        CHECKS.add("%s tiny tokenizer.json" % name, not bad, vocab=nv, merges=nm, problems=bad)
    extra = None
    if name == "mha_untied":
        # Make one parity case stop on an eos id: find a token greedy emits first at step >= 4.
        t, step, seq = stop_probe_token(model, shape, PARITY_TEXT_IDS[name])
        CHECKS.add("%s stop-probe token found" % name, t is not None, token=t, step=step, greedy=seq)
        extra = t
    common.write_json(os.path.join(d, "generation_config.json"), generation_config_for(shape, extra))
    if name == "gqa_tied":
        common.write_json(os.path.join(d, "preprocessor_config.json"), {
            "min_pixels": 3136, "max_pixels": 200704, "patch_size": 14, "temporal_patch_size": 2,
            "merge_size": 2, "image_mean": common.OPENAI_CLIP_MEAN, "image_std": common.OPENAI_CLIP_STD,
            "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor"})
    _, ok = verify_load(name, model, shape, d, probe)
    if not ok and shape["layout"] == "new":
        # 5.17 may not take the 2-D patch embed: keep the fixture usable with the 5-D form
        common.write_new_layout(model, shape, d, cfgd, dt, shards=2, patch_2d=False)
        _, ok5 = verify_load(name + " (5-D patch embed fallback)", model, shape, d, probe)
        CHECKS.add("%s new layout with 2-D patch embed loads in 5.17" % name, False,
                   fallback_5d_ok=ok5, note="fixture written with the 5-D patch embed instead")
    if not ok:
        CHECKS.fact("%s: DO NOT USE its parity cases (reload differs from the in-memory model)" % name, True)
    # the other writer on the same model, outside the fixtures (both layouts must load alike)
    alt = os.path.join(work, "alt_layout_" + name)
    if os.path.isdir(alt):
        shutil.rmtree(alt)
    try:
        if shape["layout"] == "hub":
            common.write_new_layout(model, shape, alt, common.config_45x_dict(shape, torch_dtype=dt), dt,
                                    patch_2d=False)
            verify_load(name + " (also as new layout)", model, shape, alt, probe)
        else:
            common.write_hub_layout(model, shape, alt, common.flat_config_dict(shape, torch_dtype=dt), dt)
            verify_load(name + " (also as hub layout)", model, shape, alt, probe)
    except Exception as e:  # noqa: BLE001
        log(traceback.format_exc())
        CHECKS.add("%s loads in the other layout" % name, False, error=repr(e))
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    CHECKS.add("%s files" % name, True, sizes=sizes)


# ----------------------------------------------------------------------------------------------
# Section: parity
# ----------------------------------------------------------------------------------------------

def _rand_ids(seed, n, hi):
    import numpy as np
    return [int(x) for x in np.random.default_rng(seed).integers(0, hi, n)]


def _text_ids(name, n, seed):
    s = MODEL_SHAPES[name]["special"]
    return [s["im_start"]] + _rand_ids(seed, n, MODEL_SHAPES[name]["tokenizer_base_vocab"]) + [s["eos"], 198, s["im_start"]]


PARITY_TEXT_IDS = {"gqa_tied": _text_ids("gqa_tied", 24, SEED + 200),
                   "mha_untied": _text_ids("mha_untied", 30, SEED + 201)}

LONG_TEXT_WORDS = ("the formula shows a fraction over the square root of x plus y where alpha "
                   "beta gamma are constants and the integral from zero to infinity of e to the "
                   "minus x squared equals half the square root of pi 1 2 3 4 5 6 7 8 9 10 sum "
                   "product limit derivative matrix vector norm").split()


def _long_text(seed, n_words):
    import numpy as np
    r = np.random.default_rng(seed)
    return " ".join(LONG_TEXT_WORDS[int(i)] for i in r.integers(0, len(LONG_TEXT_WORDS), n_words))


def parity_cases():
    a, b = MODEL_SHAPES["gqa_tied"]["special"], MODEL_SHAPES["mha_untied"]["special"]
    r = lambda seed, n, m: _rand_ids(seed, n, MODEL_SHAPES[m]["tokenizer_base_vocab"])  # noqa: E731
    return [
        {"name": "gqa_tied_text", "model": "models/gqa_tied",
         "request": {"prompt_ids": PARITY_TEXT_IDS["gqa_tied"]}},
        {"name": "gqa_tied_image_first", "model": "models/gqa_tied",
         "request": {"messages": [{"role": "user", "content": [
             {"type": "image", "image": "images/crop_112x56.png"},
             {"type": "text", "text": "Write the LaTeX for this formula."}]}],
             "max_pixels": 64 * 28 * 28}},
        {"name": "gqa_tied_two_images", "model": "models/gqa_tied",
         "request": {"prompt_ids": [a["im_start"]] + r(SEED + 210, 5, "gqa_tied") +
                     [a["vision_start"], a["image"], a["vision_end"]] + r(SEED + 211, 4, "gqa_tied") +
                     [a["vision_start"], a["image"], a["vision_end"]] + r(SEED + 212, 3, "gqa_tied") +
                     [a["eos"], 198, a["im_start"]],
                     "images": ["images/crop_112x56.png", "images/tiny_20x15.png"],
                     "min_pixels": 3136, "max_pixels": 64 * 28 * 28}},
        {"name": "mha_untied_text_stop", "model": "models/mha_untied",
         "request": {"prompt_ids": PARITY_TEXT_IDS["mha_untied"]}},
        {"name": "mha_untied_p_rgba", "model": "models/mha_untied",
         "request": {"messages": [{"role": "user", "content": [
             {"type": "image", "image": "images/formula_176x53_p.png"},
             {"type": "image", "image": "images/shapes_300x200_rgba.png"},
             {"type": "text", "text": "Compare the two pictures."}]}],
             "max_pixels": 8 * 28 * 28}},
        {"name": "mha_untied_minmax_l", "model": "models/mha_untied",
         "request": {"prompt_ids": [b["im_start"]] + r(SEED + 220, 6, "mha_untied") +
                     [b["vision_start"], b["image"], b["vision_end"]] + r(SEED + 221, 6, "mha_untied") +
                     [b["eos"]],
                     "images": ["images/formula_347x76_l.png"],
                     "min_pixels": 8 * 28 * 28, "max_pixels": 16 * 28 * 28}},
        {"name": "deep_text_image_text", "model": "models/deep_new_layout",
         "request": {"messages": [
             {"role": "system", "content": "You transcribe formulas."},
             {"role": "user", "content": [
                 {"type": "text", "text": "Here is a tall strip: "},
                 {"type": "image", "image": "images/tall_60x900.png"},
                 {"type": "text", "text": " What does it say?"}]}],
             "max_pixels": 8 * 28 * 28}},
        {"name": "deep_long_prompt", "model": "models/deep_new_layout",
         "request": {"messages": [{"role": "user", "content": [
             {"type": "text", "text": _long_text(SEED + 230, 120)},
             {"type": "image", "image": "images/formula_120x90_la.png"},
             {"type": "text", "text": _long_text(SEED + 231, 40)}]}],
             "max_pixels": 8 * 28 * 28}},
    ]


def cap_rows(t, limit=MAX_CASE_BYTES):
    """Keeps the tensors file under `limit` bytes by storing logits/hidden_states/
    final_norm_output only for some sequence positions, listed in `logits_rows`: always the
    first and the last 8 positions, the rest evenly spaced."""
    import torch
    size = sum(v.numel() * v.element_size() for v in t.values())
    budget = limit - 8192  # safetensors header and the logits_rows tensor
    if size <= budget:
        return t, None
    L = int(t["logits"].shape[0])
    per_row = t["logits"][0].numel() * 4 + 8
    if "hidden_states" in t:
        per_row += t["hidden_states"].shape[0] * t["hidden_states"].shape[2] * 4
    if "final_norm_output" in t:
        per_row += t["final_norm_output"].shape[1] * 4
    fixed = size - (per_row - 8) * L
    n = int((budget - fixed) // per_row)
    if n < 4:
        raise RuntimeError("case too big even with 4 logits rows: fixed part %d bytes" % fixed)
    tail = list(range(max(0, L - min(8, n // 2)), L))
    rest = n - len(tail)
    mid = sorted({int(round(x)) for x in torch.linspace(0, max(0, tail[0] - 1), steps=max(rest, 1)).tolist()}) if rest > 0 else []
    rows = sorted(set(mid + tail))
    ri = torch.tensor(rows, dtype=torch.int64)
    t = dict(t)
    t["logits"] = t["logits"][ri].contiguous()
    if "hidden_states" in t:
        t["hidden_states"] = t["hidden_states"][:, ri].contiguous()
    if "final_norm_output" in t:
        t["final_norm_output"] = t["final_norm_output"][ri].contiguous()
    t["logits_rows"] = ri
    return t, rows


_MODEL_CACHE = {}


def _load_cached(model_dir):
    if model_dir not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[model_dir] = common.load_for_dump(model_dir)
    return _MODEL_CACHE[model_dir]


def run_case(out, case, model_dir, tensors_name, max_new=12, top_k=5, adapter=None, keep=None,
             limit=MAX_CASE_BYTES):
    """The hf_dump code path for one fixture case. Returns (entry, full tensors)."""
    if adapter:
        model, info, how = common.load_for_dump(model_dir, adapter=adapter)
    else:
        model, info, how = _load_cached(model_dir)
    tok, _ = common.load_tokenizer(model_dir)
    inputs, rinfo = common.build_inputs(case["request"], model.config, base_dir=out,
                                        model_dir=model_dir, tokenizer=tok)
    eos = common.eos_ids_for(model_dir, model.config)
    tensors, meta, g = common.dump(model, inputs, max_new_tokens=max_new, top_k=top_k,
                                   eos_ids=eos, tokenizer=tok)
    full = tensors
    store = {k: v for k, v in tensors.items() if keep is None or k in keep}
    store, rows = cap_rows(store, limit)
    common.save_tensors(os.path.join(out, tensors_name), store)
    entry = dict(case)
    entry.update({"tensors": tensors_name, "max_new_tokens": max_new, "top_logprobs": top_k,
                  "greedy": g,
                  "meta": {"load": how, "rope_index": meta.get("rope_index"),
                           "rope_matches_spec_impl": meta.get("rope_matches_spec_impl"),
                           "rope_matches_forward": meta.get("rope_matches_forward"),
                           "hidden_states_last": meta.get("hidden_states_last"),
                           "forward": meta.get("forward"),
                           "image_embeds_rows_match_tokens": meta.get("image_embeds_rows_match_tokens"),
                           "processor": rinfo.get("processor"),
                           "min_pixels": rinfo["min_pixels"], "max_pixels": rinfo["max_pixels"],
                           "rendered_text": rinfo.get("rendered_text"),
                           "seq_len": int(full["input_ids"].shape[0]),
                           "image_grid_thw": full["image_grid_thw"].tolist() if "image_grid_thw" in full else [],
                           "logits_rows_subset": rows is not None,
                           "tensor_shapes": {k: list(v.shape) for k, v in store.items()},
                           "bytes": os.path.getsize(os.path.join(out, tensors_name))}})
    return entry, full, meta, g


def _case_checks(name, meta, g):
    CHECKS.add("%s rope: HF get_rope_index == spec §6.1" % name, meta.get("rope_matches_spec_impl") is True,
               how=meta.get("rope_index"))
    if meta.get("rope_matches_forward") is not None:
        CHECKS.add("%s rope: get_rope_index == positions used by forward" % name,
                   meta.get("rope_matches_forward") is True)
    if "image_embeds_rows_match_tokens" in meta:
        CHECKS.add("%s image_embeds rows == image tokens" % name, meta["image_embeds_rows_match_tokens"] is True)
    if g:
        c = g.get("checks", {})
        CHECKS.add("%s greedy token == argmax(raw logits)" % name, c.get("argmax_of_raw_logits") is True)
        s0 = c.get("step0_vs_forward_last_row_max_abs")
        if isinstance(s0, float):
            CHECKS.add("%s generate step0 == forward last row" % name, s0 <= 1e-4, max_abs=s0)
        cf = c.get("cache_vs_full_forward_max_abs")
        CHECKS.add("%s KV-cache steps == full forward" % name, isinstance(cf, float) and cf <= 1e-4, max_abs=cf)
        gap = g.get("min_top2_logit_gap")
        CHECKS.add("%s greedy margin (min top1-top2 logit gap)" % name,
                   True if (gap is None or gap > 1e-4) else "WARN", gap=gap,
                   tokens=g["token_ids"], finish=g["finish_reason"])


def section_parity(out):
    cases = []
    for c in parity_cases():
        CHECKS.section = "parity/" + c["name"]
        try:
            md = os.path.join(out, c["model"])
            if not os.path.isdir(md):
                raise RuntimeError("%s missing: run the models section first" % c["model"])
            entry, full, meta, g = run_case(out, c, md, "parity/%s.safetensors" % c["name"])
            cases.append(entry)
            _case_checks(c["name"], meta, g)
            CHECKS.add("%s written" % c["name"], entry["meta"]["bytes"] <= MAX_CASE_BYTES,
                       bytes=entry["meta"]["bytes"], seq=entry["meta"]["seq_len"],
                       grids=entry["meta"]["image_grid_thw"], rows_subset=entry["meta"]["logits_rows_subset"])
            if c["name"] == "mha_untied_text_stop":
                CHECKS.add("%s stops on an eos id" % c["name"], g["finish_reason"] == "stop",
                           finish=g["finish_reason"], tokens=g["token_ids"])
        except Exception as e:  # noqa: BLE001
            log(traceback.format_exc())
            CHECKS.add("%s" % c["name"], False, error=repr(e), where=_where())
    CHECKS.section = "parity"
    paths = {}
    for e in cases:
        for k in ("rope_index", "forward", "hidden_states_last", "processor"):
            if e["meta"].get(k) is not None:
                paths.setdefault(k, set()).add(str(e["meta"][k]))
        if e.get("greedy"):
            paths.setdefault("generate", set()).add(str(e["greedy"].get("paths", {}).get("generate")))
    CHECKS.fact("HF code paths taken (parity)", {k: sorted(v) for k, v in paths.items()})
    common.write_json(os.path.join(out, "parity", "cases.json"), {"cases": cases}, indent=1)


# ----------------------------------------------------------------------------------------------
# Section: lora
# ----------------------------------------------------------------------------------------------

LLM_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VISION_TARGETS = ["qkv", "attn.proj", "fc1", "fc2", "mlp.0", "mlp.2"]
ADAPTERS = {
    "llm_r4": dict(r=4, lora_alpha=8, target_modules=LLM_TARGETS, lora_dropout=0.0,
                   init_lora_weights=False),
    "all_r8_rslora": dict(r=8, lora_alpha=16, use_rslora=True, target_modules=LLM_TARGETS + VISION_TARGETS,
                          lora_dropout=0.0, init_lora_weights=False,
                          rank_pattern={"layers.1.mlp.down_proj": 16, "blocks.1.mlp.fc1": 2},
                          alpha_pattern={"layers.0.self_attn.v_proj": 40, "layers.1.mlp.down_proj": 8}),
}


def lora_requests():
    a = MODEL_SHAPES["gqa_tied"]["special"]
    return [
        {"name": "text", "request": {"prompt_ids": PARITY_TEXT_IDS["gqa_tied"][:18] + [a["eos"], 198, a["im_start"]]}},
        {"name": "image", "request": {"messages": [{"role": "user", "content": [
            {"type": "image", "image": "images/crop_112x56.png"},
            {"type": "text", "text": "LaTeX?"}]}], "max_pixels": 64 * 28 * 28}},
    ]


def _peft_matches(name, targets):
    return any(name == t or name.endswith("." + t) for t in targets)


def _pattern_key(keys, name):
    import re
    for k in keys:
        if re.match(r"(.*\.)?(%s)$" % k, name):
            return k
    return None


def _fill_lora(peft_model, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for pname, p in sorted(peft_model.named_parameters(), key=lambda t: t[0]):
            if ".lora_A." in pname:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
                n += 1
            elif ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
                n += 1
    return n


def section_lora(out, work):
    import torch
    from peft import LoraConfig, get_peft_model
    base_dir = os.path.join(out, "models", "gqa_tied")
    if not os.path.isdir(base_dir):
        raise RuntimeError("models/gqa_tied missing: run the models section first")
    ldir = os.path.join(out, "lora")
    os.makedirs(ldir, exist_ok=True)
    shape = MODEL_SHAPES["gqa_tied"]
    probe = probe_inputs(shape, SEED + 300)
    base_model, _, _ = common.load_pretrained(base_dir)
    base_logits = logits_of(base_model, probe)
    cases = []
    for aname, spec in ADAPTERS.items():
        CHECKS.section = "lora/" + aname
        try:
            model, _, _ = common.load_pretrained(base_dir)
            linear_names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
            expected = sorted(n for n in linear_names if _peft_matches(n, spec["target_modules"]))
            cfg = LoraConfig(task_type="CAUSAL_LM", **spec)
            pm = get_peft_model(model, cfg)
            nfill = _fill_lora(pm, SEED + 400 + len(aname))
            got = sorted({n.split(".lora_A")[0].replace("base_model.model.", "", 1)
                          for n, _ in pm.named_parameters() if ".lora_A." in n})
            CHECKS.add("%s targeted modules = PEFT rule (spec §8.1)" % aname, got == expected,
                       n=len(got), missing=sorted(set(expected) - set(got))[:5],
                       extra=sorted(set(got) - set(expected))[:5], filled=nfill)
            CHECKS.add("%s patch_embed not targeted" % aname, not any("patch_embed" in n for n in got))
            # per-module ranks from rank_pattern
            bad_r = []
            for n, p in pm.named_parameters():
                if ".lora_A." in n:
                    mod = n.split(".lora_A")[0].replace("base_model.model.", "", 1)
                    k = _pattern_key(list(spec.get("rank_pattern", {})), mod)
                    want = spec["rank_pattern"][k] if k else spec["r"]
                    if p.shape[0] != want:
                        bad_r.append("%s r=%d want %d" % (mod, p.shape[0], want))
            CHECKS.add("%s rank_pattern applied" % aname, not bad_r, problems=bad_r[:5])
            adir = os.path.join(ldir, aname)
            if os.path.isdir(adir):
                shutil.rmtree(adir)
            pm.save_pretrained(adir)
            keys = common.safetensors_keys(os.path.join(adir, "adapter_model.safetensors"))
            CHECKS.fact("lora %s: adapter files" % aname, sorted(os.listdir(adir)))
            CHECKS.fact("lora %s: adapter key names (%d)" % (aname, len(keys)), {k: keys[k] for k in sorted(keys)})
            CHECKS.add("%s adapter keys: no patch_embed, all lora_A/lora_B" % aname,
                       all((".lora_A." in k or ".lora_B." in k) and "patch_embed" not in k for k in keys),
                       n=len(keys), sample=sorted(keys)[:2])
            in_mem = logits_of(common.unwrap(pm), probe)
            CHECKS.add("%s adapter changes logits" % aname, float((in_mem - base_logits).abs().max()) > 1e-3,
                       max_abs=float((in_mem - base_logits).abs().max()))
            reloaded, _, how = common.load_for_dump(base_dir, adapter=adir)
            d = float((logits_of(reloaded, probe) - in_mem).abs().max())
            CHECKS.add("%s reloaded adapter logits bit-identical" % aname, d == 0.0, max_abs=d, how=how)
            # merge formula check (spec §8.3) on a merged copy in memory
            from peft import PeftModel
            fresh, _, _ = common.load_pretrained(base_dir)
            merged_mem = PeftModel.from_pretrained(fresh, adir).merge_and_unload()
            fdiff, fworst, nmod = _check_merge_formula(model_base_sd(base_dir), adir, merged_mem)
            CHECKS.add("%s merged W == W + B@A*scale (spec §8.3, rslora/patterns)" % aname,
                       fdiff <= 1e-6, max_abs=fdiff, worst=fworst, modules=nmod)
            del merged_mem
            # cases: through the hf_dump path (adapter loaded from disk)
            per_req = {}
            for rq in lora_requests():
                tname = "lora/%s_%s.safetensors" % (aname, rq["name"])
                c = {"name": "%s_%s" % (aname, rq["name"]), "model": "models/gqa_tied",
                     "adapter": "lora/" + aname, "request": rq["request"]}
                entry, full, meta, g = run_case(out, c, base_dir, tname, adapter=adir,
                                                keep={"logits", "input_ids", "position_ids", "rope_delta",
                                                      "image_grid_thw"},
                                                # llm_r4 files get merged_logits too: half the budget each
                                                limit=MAX_CASE_BYTES // 2 if aname == "llm_r4" else MAX_CASE_BYTES)
                _case_checks(c["name"], meta, g)
                per_req[rq["name"]] = (entry, full)
                cases.append(entry)
            if aname == "llm_r4":
                _merged(out, work, base_dir, adir, per_req, probe)
        except Exception as e:  # noqa: BLE001
            log(traceback.format_exc())
            CHECKS.add("%s" % aname, False, error=repr(e), where=_where())
    CHECKS.section = "lora"
    common.write_json(os.path.join(ldir, "cases.json"), {"cases": cases}, indent=1)


_BASE_SD = {}


def model_base_sd(base_dir):
    if base_dir not in _BASE_SD:
        m, _, _ = common.load_pretrained(base_dir)
        _BASE_SD[base_dir] = {k: v.clone() for k, v in m.state_dict().items()}
    return _BASE_SD[base_dir]


def _check_merge_formula(base_sd, adir, merged):
    """max |merged W - (W + B@A*scale)| over all adapted modules, scale from adapter_config.json
    exactly as spec §8.1/§8.3 say (alpha_pattern/rank_pattern, rslora)."""
    from safetensors.torch import load_file
    ac = common.read_json(os.path.join(adir, "adapter_config.json"))
    sd = load_file(os.path.join(adir, "adapter_model.safetensors"))
    msd = merged.state_dict()
    worst, worst_name, n = 0.0, None, 0
    for k in sorted(sd):
        if not k.endswith(".lora_A.weight"):
            continue
        mod = k[len("base_model.model."):-len(".lora_A.weight")]
        A = sd[k].float()
        B = sd[k.replace(".lora_A.", ".lora_B.")].float()
        r = A.shape[0]
        ak = _pattern_key(list((ac.get("alpha_pattern") or {}).keys()), mod)
        alpha = (ac["alpha_pattern"][ak] if ak else ac["lora_alpha"])
        scale = alpha / math.sqrt(r) if ac.get("use_rslora") else alpha / r
        wk = mod + ".weight"
        if wk not in base_sd or wk not in msd:
            worst, worst_name = float("inf"), "missing " + wk
            continue
        exp = base_sd[wk].float() + (B @ A) * scale
        d = float((msd[wk].float() - exp).abs().max())
        n += 1
        if d > worst or worst_name is None:
            worst, worst_name = d, wk
    return worst, worst_name, n


def _merged(out, work, base_dir, adir, per_req, probe):
    import torch
    from peft import PeftModel
    base, _, _ = common.load_pretrained(base_dir)
    pm = PeftModel.from_pretrained(base, adir)
    merged = pm.merge_and_unload()
    mdir = os.path.join(out, "models", "gqa_tied_merged_llm_r4")
    if os.path.isdir(mdir):
        shutil.rmtree(mdir)
    merged.save_pretrained(mdir)
    keys = common.safetensors_keys(mdir)
    CHECKS.fact("merged llm_r4: files save_pretrained wrote", sorted(os.listdir(mdir)))
    CHECKS.fact("merged llm_r4: tensor names (first 8 of %d)" % len(keys), {k: keys[k] for k in sorted(keys)[:8]})
    CHECKS.fact("merged llm_r4: config.json", common.read_json(os.path.join(mdir, "config.json")))
    for f in ("tokenizer.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(base_dir, f), os.path.join(mdir, f))
    loaded, info, how = common.load_pretrained(mdir)
    bad_keys = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    CHECKS.add("merged model reloads (no missing/unexpected keys)", not bad_keys, info=bad_keys)
    for rq_name, (entry, full) in per_req.items():
        rq = [r for r in lora_requests() if r["name"] == rq_name][0]
        tok, _ = common.load_tokenizer(mdir)
        inputs, _ = common.build_inputs(rq["request"], loaded.config, base_dir=out, model_dir=mdir, tokenizer=tok)
        t2, meta2 = common.forward_dump(loaded, inputs)
        d = float((t2["logits"] - full["logits"]).abs().max())
        CHECKS.add("merged vs unmerged logits (%s)" % rq_name, d <= 1e-4, max_abs=d)
        if not torch.equal(t2["input_ids"], full["input_ids"]):
            CHECKS.add("merged request ids equal (%s)" % rq_name, False)
        # rewrite the tensors file with merged_logits added
        path = os.path.join(out, entry["tensors"])
        from safetensors.torch import load_file
        cur = load_file(path)
        ml = t2["logits"]
        if "logits_rows" in cur:
            ml = ml[cur["logits_rows"]]
        cur["merged_logits"] = ml.contiguous()
        common.save_tensors(path, cur)
        entry["merged_model"] = "models/gqa_tied_merged_llm_r4"
        entry["merged_vs_unmerged_max_abs"] = d
        entry["meta"]["bytes"] = os.path.getsize(path)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def dir_sizes(out):
    res = {}
    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            s = os.path.getsize(os.path.join(root, f))
            top = os.path.relpath(root, out).split(os.sep)[0]
            res[top] = res.get(top, 0) + s
            total += s
    res["TOTAL"] = total
    return res


def print_summary(sections, out, wall):
    say("")
    say("=" * 100)
    say("SUMMARY  make_fixtures  out=%s  (%.1fs)" % (out, wall))
    say("%-12s %-8s %6s %6s %6s %8s" % ("section", "status", "pass", "fail", "other", "time"))
    for s, info in sections.items():
        items = [c for c in CHECKS.items if c["section"].split("/")[0] == s]
        npass = sum(c["status"] == "PASS" for c in items)
        nfail = sum(c["status"] == "FAIL" for c in items)
        say("%-12s %-8s %6d %6d %6d %7.1fs" % (s, info["status"], npass, nfail, len(items) - npass - nfail,
                                              info.get("seconds", 0)))
    fails = [c for c in CHECKS.items if c["status"] == "FAIL"]
    others = [c for c in CHECKS.items if c["status"] not in ("PASS", "FAIL")]
    if fails:
        say("-- FAILED (%d):" % len(fails))
        for c in fails[:40]:
            extra = {k: v for k, v in c.items() if k not in ("section", "name", "status")}
            say("  [%s] %s %s" % (c["section"], c["name"], json.dumps(extra, default=str)[:240]))
    if others:
        say("-- WARN/INFO/SKIP (%d):" % len(others))
        for c in others[:15]:
            extra = {k: v for k, v in c.items() if k not in ("section", "name", "status")}
            say("  %s [%s] %s %s" % (c["status"], c["section"], c["name"], json.dumps(extra, default=str)[:200]))
    # a few key facts, short
    skip = ("key names", "config.json", "state_dict names")
    key = [(k, v) for k, v in CHECKS.facts.items() if not any(s in k for s in skip)]
    if key:
        say("-- FACTS (full list in MANIFEST.json):")
        for k, v in key[:16]:
            say("  %s: %s" % (k, json.dumps(v, default=str)[:300]))
    sizes = dir_sizes(out) if os.path.isdir(out) else {}
    say("-- sizes: " + ", ".join("%s %.2f MB" % (k, v / 1e6) for k, v in sorted(sizes.items())))
    ntot = len(CHECKS.items)
    say("TOTAL: %d checks, %d passed, %d failed, %d other" % (
        ntot, sum(c["status"] == "PASS" for c in CHECKS.items), len(fails), len(others)))
    say("=" * 100)


def main(argv=None):
    ap = argparse.ArgumentParser(description="make vlmd parity fixtures")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sections", default=",".join(ALL_SECTIONS))
    ap.add_argument("--tokenizer", default=None, help="real tokenizer.json (default third_party/tokenizer/tokenizer.json)")
    ap.add_argument("--log", default=None, help="log file (default <out>.log)")
    ap.add_argument("--tar", default=None, help="also write this .tgz with the fixtures dir and the log")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a check failed")
    ap.add_argument("--pv-head-rows", type=int, default=8, help="pixel_values rows per preprocess case")
    a = ap.parse_args(argv)
    global PV_HEAD_ROWS
    PV_HEAD_ROWS = a.pv_head_rows
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    logpath = os.path.abspath(a.log or (out.rstrip("/") + ".log"))
    lg = common.Log(logpath)
    common.set_log(lg)
    real_stderr = sys.stderr
    sys.stderr = _StderrToLog(lg)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    work = os.path.join(os.path.dirname(out), "_make_fixtures_work")
    os.makedirs(work, exist_ok=True)
    t_start = time.time()
    wanted = [s.strip() for s in a.sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in ALL_SECTIONS]
    if unknown:
        say("unknown sections %s; known: %s" % (unknown, ALL_SECTIONS))
        return 2
    say("make_fixtures: out=%s log=%s sections=%s" % (out, logpath, wanted))
    ver = {}
    try:
        common.setup_determinism(threads=a.threads, seed=SEED)
        ver = common.versions()
        say("versions: " + json.dumps(ver))
    except Exception as e:  # noqa: BLE001
        say("!! setup failed: %r" % (e,))
    sections = {}
    runners = {
        "images": lambda: build_images(out),
        "preprocess": lambda: section_preprocess(out),
        "tokenizer": lambda: section_tokenizer(out, a.tokenizer),
        "models": lambda: section_models(out, a.tokenizer, work),
        "parity": lambda: section_parity(out),
        "lora": lambda: section_lora(out, work),
    }
    for s in ALL_SECTIONS:
        if s not in wanted:
            continue
        CHECKS.section = s
        t0 = time.time()
        say("== %s ..." % s)
        try:
            runners[s]()
            status = "done"
        except Exception as e:  # noqa: BLE001
            status = "CRASHED"
            lg.log(traceback.format_exc())
            CHECKS.section = s
            CHECKS.add("section %s crashed" % s, False, error=repr(e)[:500], where=_where())
            say("!! section %s crashed: %r (traceback in the log)" % (s, e))
        sections[s] = {"status": status, "seconds": round(time.time() - t0, 2)}
        say("== %s %s in %.1fs" % (s, status, time.time() - t0))
    manifest = {
        "generator": "tests/reference/make_fixtures.py",
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "cwd": os.getcwd(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": ver,
        "seed": SEED,
        "sections": dict(sections),
        "checks": CHECKS.items,
        "facts": CHECKS.facts,
        "model_shapes": MODEL_SHAPES,
        "sizes": dir_sizes(out),
    }
    mpath = os.path.join(out, "MANIFEST.json")
    if os.path.exists(mpath) and set(wanted) != set(ALL_SECTIONS):
        # partial run: keep the earlier sections' records
        try:
            old = common.read_json(mpath)
            for s, v in old.get("sections", {}).items():
                if s not in sections:
                    manifest["sections"][s] = v
            manifest["checks"] = [c for c in old.get("checks", []) if c["section"].split("/")[0] not in sections] + CHECKS.items
            manifest["facts"] = dict(old.get("facts", {}), **CHECKS.facts)
        except Exception as e:  # noqa: BLE001
            lg.log("could not merge the old MANIFEST: %r" % (e,))
    common.write_json(mpath, manifest, indent=1)
    print_summary(sections, out, time.time() - t_start)
    sys.stderr = real_stderr
    if a.tar:
        try:
            with tarfile.open(a.tar, "w:gz") as tf:
                tf.add(out, arcname=os.path.basename(out))
                tf.add(logpath, arcname=os.path.basename(logpath))
            say("wrote %s (%.2f MB)" % (a.tar, os.path.getsize(a.tar) / 1e6))
        except Exception as e:  # noqa: BLE001
            say("!! tar failed: %r" % (e,))
    nfail = sum(c["status"] == "FAIL" for c in CHECKS.items)
    return 1 if (a.strict and nfail) else 0


if __name__ == "__main__":
    sys.exit(main())
