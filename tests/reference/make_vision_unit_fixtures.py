#!/usr/bin/python3
"""Writes tests/fixtures/images/unit/ for the core/vision unit tests (vision_test).

1. decode_cases.json: small images in every mode and format the decoder handles, each with what
   PIL gives after Image.open(...).convert("RGB"), saved as an 8-bit RGB PNG (<name>.rgb.png).
   PNGs whose layout PIL cannot write (16-bit RGB/LA/RGBA, 1/2/4-bit grey, tRNS, Adam7
   interlace, gAMA/iCCP chunks) and the GIFs with a sub-rectangle first frame are written by hand
   here; PIL only reads them.
2. resize_cases.json: Pillow's Image.resize((w, h), Image.BICUBIC) of two sources at several
   sizes, for the comparison with Pillow's resampler in resize_test.cc.

Runs here (no GPU) with Debian's interpreter and packages: apt-get install python3-pil
python3-numpy, then  /usr/bin/python3 tests/reference/make_vision_unit_fixtures.py
Deterministic (fixed seeds); every file stays under 10 KB.
"""

import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "images", "unit")
W, H = 23, 17  # odd sizes, so that bit packing and interlace passes get partial rows
RNG = np.random.default_rng(20261125)


# ---------------------------------------------------------------------------------------------
# PNG writing by hand


def chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """samples: uint array [h, w*channels] -> list of packed row bytes (big-endian 16-bit)."""
    rows = []
    for row in samples:
        if depth == 16:
            rows.append(row.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(row.astype(np.uint8).tobytes())
        else:
            per_byte = 8 // depth
            padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.uint8)
            padded[: len(row)] = row
            packed = np.zeros(len(padded) // per_byte, dtype=np.uint8)
            for k in range(per_byte):
                packed |= (padded[k::per_byte] << (8 - depth * (k + 1))).astype(np.uint8)
            rows.append(packed.tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]  # (x0, y0, dx, dy)


def write_png(name, samples, depth, color_type, channels, extra=b"", interlace=False):
    h = samples.shape[0]
    w = samples.shape[1] // channels
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    raw = b""
    if interlace:
        img = samples.reshape(h, w, channels)
        for x0, y0, dx, dy in ADAM7:
            sub = img[y0::dy, x0::dx]
            if sub.size == 0:
                continue
            for r in pack_rows(sub.reshape(sub.shape[0], -1), depth):
                raw += b"\0" + r
    else:
        for r in pack_rows(samples, depth):
            raw += b"\0" + r
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def gradient(channels, maxval, seed_shift=0):
    ys, xs = np.mgrid[0:H, 0:W]
    planes = []
    for c in range(channels):
        p = (xs * max(1, maxval // (W - 1)) * (c + 1 + seed_shift) +
             ys * max(1, maxval // (H - 1)) * (3 - c))
        planes.append(p % (maxval + 1))
    a = np.stack(planes, axis=-1)
    a[::5, ::3] = RNG.integers(0, maxval + 1, a[::5, ::3].shape)
    return a.reshape(H, W * channels)


def hand_made_pngs():
    names = []
    for depth in (1, 2, 4, 8):
        s = gradient(1, (1 << depth) - 1)
        write_png("png_l%d.png" % depth, s, depth, 0, 1)
        names.append("png_l%d.png" % depth)
    g16 = gradient(1, 65535)
    g16[0, :8] = [0, 1, 100, 254, 255, 256, 257, 65535]  # around PIL's saturation at 255
    write_png("png_l16.png", g16, 16, 0, 1)
    write_png("png_la8.png", gradient(2, 255), 8, 4, 2)
    write_png("png_la16.png", gradient(2, 65535), 16, 4, 2)
    write_png("png_rgb16.png", gradient(3, 65535), 16, 2, 3)
    write_png("png_rgba16.png", gradient(4, 65535, 1), 16, 6, 4)
    rgba = gradient(4, 255, 2)
    rgba.reshape(H, W, 4)[2:6, 2:9, 3] = 0  # coloured pixels under alpha 0
    write_png("png_rgba8.png", rgba, 8, 6, 4)
    names += ["png_l16.png", "png_la8.png", "png_la16.png", "png_rgb16.png", "png_rgba16.png",
              "png_rgba8.png"]
    # palette, 4-bit and 8-bit, with a partial tRNS
    pal = RNG.integers(0, 256, (16, 3)).astype(np.uint8)
    idx = gradient(1, 15)
    plte = chunk(b"PLTE", pal.tobytes())
    write_png("png_p4.png", idx, 4, 3, 1, plte)
    write_png("png_p8_trns.png", idx, 8, 3, 1, plte + chunk(b"tRNS", bytes([0, 128, 255, 7])))
    g8 = gradient(1, 255)
    write_png("png_l8_trns.png", g8, 8, 0, 1, chunk(b"tRNS", struct.pack(">H", int(g8[3, 3]))))
    rgb = gradient(3, 255)
    r0 = rgb.reshape(H, W, 3)[4, 4]
    write_png("png_rgb8_trns.png", rgb, 8, 2, 3, chunk(b"tRNS", struct.pack(">HHH", *map(int, r0))))
    write_png("png_rgb8_adam7.png", rgb, 8, 2, 3, interlace=True)
    write_png("png_l16_adam7.png", g16, 16, 0, 1, interlace=True)
    icc = chunk(b"iCCP", b"fake profile\0\0" + zlib.compress(b"not a real ICC profile" * 4))
    gama = chunk(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0: would brighten if applied
    chrm = chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000,
                                      6000))
    write_png("png_rgb8_gama_iccp.png", rgb, 8, 2, 3, gama + chrm + icc)
    names += ["png_p4.png", "png_p8_trns.png", "png_l8_trns.png", "png_rgb8_trns.png",
              "png_rgb8_adam7.png", "png_l16_adam7.png", "png_rgb8_gama_iccp.png"]
    return names


# ---------------------------------------------------------------------------------------------
# GIF writing by hand (uncompressed-style LZW: a clear code every 200 literals keeps 9-bit codes)


def lzw_literals(indices):
    codes = [256]
    for k, v in enumerate(indices):
        if k and k % 200 == 0:
            codes.append(256)
        codes.append(int(v))
    codes.append(257)
    bits, nbits, out = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += 9
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = bytearray([8])  # LZW minimum code size
    for i in range(0, len(out), 255):
        part = out[i:i + 255]
        blocks += bytes([len(part)]) + part
    return bytes(blocks + b"\0")


def write_gif(name, palette, frame, left, top, transparent=None, background=2):
    fh, fw = frame.shape
    data = b"GIF89a" + struct.pack("<HHBBB", W, H, 0x80 | 0x03, background, 0) + palette.tobytes()
    if transparent is not None:
        data += b"\x21\xf9\x04" + bytes([1]) + b"\0\0" + bytes([transparent]) + b"\0"
    data += b"\x2c" + struct.pack("<HHHHB", left, top, fw, fh, 0) + lzw_literals(frame.ravel())
    data += b"\x3b"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def hand_made_gifs():
    pal = RNG.integers(0, 256, (16, 3)).astype(np.uint8)
    frame = RNG.integers(0, 16, (8, 10)).astype(np.uint8)
    frame[2:4, 2:6] = 5
    write_gif("gif_subrect_trns.gif", pal, frame, 5, 3, transparent=5)
    write_gif("gif_subrect.gif", pal, frame, 5, 3)
    full = RNG.integers(0, 16, (H, W)).astype(np.uint8)
    full[5:9, 1:12] = 9
    write_gif("gif_full_trns.gif", pal, full, 0, 0, transparent=9)
    return ["gif_subrect_trns.gif", "gif_subrect.gif", "gif_full_trns.gif"]


def write_bmp16(name, layout):
    """16 bits per pixel, bottom-up: BI_RGB 5-5-5, or BI_BITFIELDS 5-6-5 after a 40-byte header."""
    v = RNG.integers(0, 65536, (H, W)).astype(np.uint16)
    v[0, :8] = [0x0000, 0x0421, 0x4210, 0x7FFF, 0x7C00, 0x03E0, 0x001F, 0x2108]
    row_bytes = (W * 2 + 3) // 4 * 4
    rows = b"".join(v[y].astype("<u2").tobytes().ljust(row_bytes, b"\0") for y in range(H - 1, -1, -1))
    masks = struct.pack("<III", 0xF800, 0x7E0, 0x1F) if layout == "565" else b""
    info = struct.pack("<IiiHHIIiiII", 40, W, H, 1, 16, 3 if masks else 0, len(rows), 2835, 2835,
                       0, 0)
    offset = 14 + len(info) + len(masks)
    data = b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + masks + rows
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def hand_made_bmps():
    write_bmp16("bmp16_555.bmp", "555")
    write_bmp16("bmp16_565.bmp", "565")
    return ["bmp16_555.bmp", "bmp16_565.bmp"]


# ---------------------------------------------------------------------------------------------
# Files PIL writes itself (BMP, GIF, JPEG)


def photo(w, h, seed):
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    a = np.stack([xs * 255 / max(w - 1, 1), ys * 255 / max(h - 1, 1),
                  128 + 100 * np.sin(xs / 3.0 + ys / 5.0)], axis=-1)
    a[h // 3: h // 2, w // 4: w // 2] = [250, 30, 30]  # hard edges
    a[:, (2 * w) // 3] = 0
    a += rng.normal(0, 6, a.shape)
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "RGB")


def pil_written():
    names = []
    src = photo(W, H, 7)
    src.save(os.path.join(OUT, "bmp_rgb24.bmp"))
    src.quantize(colors=16, method=0, dither=0).save(os.path.join(OUT, "bmp_p8.bmp"))
    src.convert("1").save(os.path.join(OUT, "bmp_1bit.bmp"))
    names += ["bmp_rgb24.bmp", "bmp_p8.bmp", "bmp_1bit.bmp"]
    try:
        rgba = src.copy()
        rgba.putalpha(Image.fromarray((np.arange(W * H) % 256).astype(np.uint8).reshape(H, W)))
        rgba.save(os.path.join(OUT, "bmp_rgba32.bmp"))
        names.append("bmp_rgba32.bmp")
    except (OSError, KeyError) as e:
        print("no RGBA BMP writer:", e)
    src.quantize(colors=32, method=0, dither=0).save(os.path.join(OUT, "gif_pil.gif"))
    src.convert("L").save(os.path.join(OUT, "gif_pil_l.gif"))
    names += ["gif_pil.gif", "gif_pil_l.gif"]
    big = photo(64, 48, 8)
    big.save(os.path.join(OUT, "jpeg_420.jpg"), quality=90)
    big.save(os.path.join(OUT, "jpeg_444.jpg"), quality=95, subsampling=0)
    big.save(os.path.join(OUT, "jpeg_progressive.jpg"), quality=85, progressive=True)
    big.convert("L").save(os.path.join(OUT, "jpeg_grey.jpg"), quality=90)
    big.convert("CMYK").save(os.path.join(OUT, "jpeg_cmyk.jpg"), quality=90)  # Adobe APP14
    names += ["jpeg_420.jpg", "jpeg_444.jpg", "jpeg_progressive.jpg", "jpeg_grey.jpg",
              "jpeg_cmyk.jpg"]
    return names


def decode_cases(names):
    cases = []
    for name in names:
        im = Image.open(os.path.join(OUT, name))
        mode = im.mode
        rgb = im.convert("RGB")
        expected = os.path.splitext(name)[0] + ".rgb.png"
        rgb.save(os.path.join(OUT, expected))
        cases.append({"input": name, "expected": expected, "pil_mode": mode,
                      "exact": not name.startswith("jpeg_")})
    return cases


def resize_cases():
    sources = {"resize_src_64x48.png": photo(64, 48, 9),
               "resize_src_23x17.png": Image.fromarray(
                   RNG.integers(0, 256, (17, 23, 3)).astype(np.uint8), "RGB")}
    sizes = {"resize_src_64x48.png": [(20, 15), (32, 24), (61, 47), (64, 20), (100, 48), (76, 57),
                                      (7, 5), (150, 30), (33, 200)],
             "resize_src_23x17.png": [(56, 56), (60, 40), (9, 4), (23, 50), (1, 1)]}
    cases = []
    for src_name, im in sources.items():
        im.save(os.path.join(OUT, src_name))
        for w, h in sizes[src_name]:
            out_name = "%s_bicubic_%dx%d.png" % (os.path.splitext(src_name)[0], w, h)
            im.resize((w, h), Image.BICUBIC).save(os.path.join(OUT, out_name))
            cases.append({"input": src_name, "width": w, "height": h, "pillow": out_name})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    names = hand_made_pngs() + hand_made_gifs() + hand_made_bmps() + pil_written()
    with open(os.path.join(OUT, "decode_cases.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "cases": decode_cases(names)}, f, indent=1)
    with open(os.path.join(OUT, "resize_cases.json"), "w") as f:
        json.dump(resize_cases(), f, indent=1)
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, name))
        if size > 10240:
            sys.exit("%s is %d bytes, over 10 KB" % (name, size))
    print("wrote %d files to %s (Pillow %s)" % (len(os.listdir(OUT)), OUT, PIL.__version__))


if __name__ == "__main__":
    main()
