#!/usr/bin/env python3
"""Checks of the parts of common.py / make_fixtures.py that need neither transformers nor a GPU
(runs with Debian's python3-torch/-numpy/-pil): smart_resize against spec §3.2's worked values,
the patch order against spec §3.4's index formula, the rope index against a hand-made example,
the chat template against spec §5.1's example, tensor renaming, row capping, the tiny
tokenizer's vocabulary/merges, and that the parity/lora requests expand to the expected token
counts. Exit status 1 on any failure.

  python3 tests/reference/selftest.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

FAILS = []


def check(name, ok, detail=""):
    print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail))
    if not ok:
        FAILS.append(name)


def test_smart_resize():
    # spec §3.2 worked values (h, w) -> (max 12,845,056) / (max 1,003,520)
    table = [((480, 640), (476, 644), (476, 644)), ((1365, 2048), (1372, 2044), (812, 1204)),
             ((3000, 4000), (2996, 4004), (840, 1148)), ((70, 70), (56, 56), (56, 56))]
    for (h, w), big, small in table:
        got_big = common.smart_resize(h, w, 28, 3136, 12845056)
        got_small = common.smart_resize(h, w, 28, 3136, 1003520)
        check("smart_resize %dx%d" % (h, w), got_big == big and got_small == small, (got_big, got_small))
    # spec §12 grids (W x H given there)
    for (w, h), mn, mx, grid in [((769, 76), 3136, 1003520, (6, 54)), ((347, 76), 3136, 1003520, (6, 24)),
                                 ((176, 53), 3136, 1003520, (4, 12)), ((1000, 700), 3136, 1003520, (50, 72)),
                                 ((300, 200), 3136, 1003520, (14, 22)), ((769, 76), 3136, 50176, (4, 50)),
                                 ((1000, 700), 3136, 50176, (12, 18))]:
        rh, rw = common.smart_resize(h, w, 28, mn, mx)
        check("spec §12 grid %dx%d max %d" % (w, h, mx), (rh // 14, rw // 14) == grid, (rh // 14, rw // 14))
    # the max(factor, .) clamp case used by parity deep_text_image_text
    check("clamp tall 60x900 @6272", common.smart_resize(900, 60, 28, 3136, 6272) == (280, 28),
          common.smart_resize(900, 60, 28, 3136, 6272))


def test_patchify():
    import torch
    C, H, W = 3, 56, 84
    img = torch.arange(C * H * W, dtype=torch.float32).reshape(C, H, W)
    pv, (gt, gh, gw) = common.patchify(img)
    ok = pv.shape == (gh * gw, 1176)
    # spec §3.4: row = ((bh*(gw/2)+bw)*2+mh)*2+mw ; col = ((c*2+tp)*14+ph)*14+pw
    for bh in range(gh // 2):
        for bw in range(gw // 2):
            for mh in range(2):
                for mw in range(2):
                    row = ((bh * (gw // 2) + bw) * 2 + mh) * 2 + mw
                    for (c, tp, ph, pw) in [(0, 0, 0, 0), (2, 1, 13, 5), (1, 0, 7, 13)]:
                        col = ((c * 2 + tp) * 14 + ph) * 14 + pw
                        y, x = (bh * 2 + mh) * 14 + ph, (bw * 2 + mw) * 14 + pw
                        ok = ok and float(pv[row, col]) == float(img[c, y, x])
    check("patchify = spec §3.4 index formula", ok)


def test_rope():
    # [a b VS img*6 (grid 1x4x6 -> 2x3) VE c d]
    I, V, VS = 9, 10, 7
    ids = [1, 2, VS] + [I] * 6 + [8, 3, 4]
    pos, delta = common.rope_index_reference(ids, [[1, 4, 6]], I, V, VS)
    exp_t = [0, 1, 2] + [3] * 6 + [6, 7, 8]
    exp_h = [0, 1, 2] + [3, 3, 3, 4, 4, 4] + [6, 7, 8]
    exp_w = [0, 1, 2] + [3, 4, 5, 3, 4, 5] + [6, 7, 8]
    check("rope index example", pos == [exp_t, exp_h, exp_w] and delta == 9 - 12, (pos, delta))
    pos, delta = common.rope_index_reference([5, 6, 7], [], I, V, VS)
    check("rope index text only", pos == [[0, 1, 2]] * 3 and delta == 0)


def test_template():
    text, images = common.render_chat([{"role": "user", "content": [
        {"type": "image", "image": "x.png"}, {"type": "text", "text": "What kind of dog is this?"}]}])
    exp = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
           "<|vision_start|><|image_pad|><|vision_end|>What kind of dog is this?<|im_end|>\n"
           "<|im_start|>assistant\n")
    check("chat template = spec §5.1 example", text == exp and images == ["x.png"], repr(text))
    text, _ = common.render_chat([{"role": "system", "content": "S"}, {"role": "user", "content": "u"}],
                                 add_generation_prompt=False)
    check("chat template with system", text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n")


def test_names():
    import make_fixtures as mf
    for name, shape in mf.MODEL_SHAPES.items():
        keys = common.expected_hub_keys(shape)
        new = {common.hub_to_new_name(k) for k in keys}
        back = {common.to_hub_name(k) for k in new}
        check("names round trip %s (%d tensors)" % (name, len(keys)), back == set(keys))
        check("lm_head iff untied %s" % name, ("lm_head.weight" in keys) == (not shape["tie_word_embeddings"]))
        n = sum(__import__("math").prod(v) for v in keys.values())
        nbytes = n * (2 if shape["storage_dtype"] == "bfloat16" else 4)
        print("   %s: %d params, %.0f KB stored as %s" % (name, n, nbytes / 1e3, shape["storage_dtype"]))
        s = shape["special"]
        check("special ids inside vocab %s" % name, max(s.values()) < shape["vocab_size"] and
              min(s.values()) >= shape["tokenizer_base_vocab"] and len(set(s.values())) == len(s))
        hd = shape["hidden_size"] // shape["num_attention_heads"]
        check("mrope sums to head_dim/2 %s" % name, sum(shape["mrope_section"]) == hd // 2)
        check("vision heads divide embed %s" % name, shape["vision"]["embed_dim"] % shape["vision"]["num_heads"] == 0)
    check("to_hub_name 4.x names", common.to_hub_name("model.layers.0.mlp.up_proj.weight") == "model.layers.0.mlp.up_proj.weight"
          and common.to_hub_name("visual.blocks.0.attn.qkv.bias") == "visual.blocks.0.attn.qkv.bias"
          and common.to_hub_name("model.language_model.norm.weight") == "model.norm.weight"
          and common.to_hub_name("model.visual.merger.mlp.0.weight") == "visual.merger.mlp.0.weight")


def test_configs():
    import json
    import make_fixtures as mf
    a = common.flat_config_dict(mf.MODEL_SHAPES["gqa_tied"])
    c = common.config_45x_dict(mf.MODEL_SHAPES["deep_new_layout"])
    json.dumps(a, allow_nan=False)
    json.dumps(c, allow_nan=False)
    check("flat config: no text_config, rope mrope", "text_config" not in a and a["rope_scaling"]["type"] == "mrope"
          and a["vision_config"]["in_chans"] == 3 and a["tie_word_embeddings"] is True)
    check("4.5x config: flat + text_config", c["text_config"]["num_hidden_layers"] == 5 and c["num_hidden_layers"] == 5
          and c["rope_scaling"]["type"] == "default" and "patch_size" not in c["vision_config"])
    g = mf.generation_config_for(mf.MODEL_SHAPES["gqa_tied"])
    check("gqa_tied generation eos [1001, 1000]", g["eos_token_id"] == [1001, 1000])


def test_cap_rows():
    import torch
    import make_fixtures as mf
    L, V = 300, 2048
    t = {"logits": torch.zeros(L, V), "hidden_states": torch.zeros(6, L, 128), "input_ids": torch.zeros(L, dtype=torch.int64),
         "final_norm_output": torch.zeros(L, 128), "pixel_values": torch.zeros(24, 1176)}
    t2, rows = mf.cap_rows(t)
    size = sum(v.numel() * v.element_size() for v in t2.values())
    check("cap_rows under limit", size <= mf.MAX_CASE_BYTES and rows[0] == 0 and rows[-1] == L - 1
          and t2["logits"].shape[0] == len(rows), (size, len(rows)))


def test_requests():
    import make_fixtures as mf
    for c in mf.parity_cases() + [dict(r, model="models/gqa_tied") for r in mf.lora_requests()]:
        req = c["request"]
        shape = mf.MODEL_SHAPES[c["model"].split("/")[1]]
        if "messages" in req:
            text, images = common.render_chat(req["messages"])
        else:
            images = req.get("images", [])
            n_img = sum(1 for t in req["prompt_ids"] if t == shape["special"]["image"])
            check("%s image count" % c.get("name", "?"), n_img == len(images))
            check("%s ids in vocab" % c.get("name", "?"), max(req["prompt_ids"]) < shape["vocab_size"])
        for p in images:
            from PIL import Image
            fp = os.path.join(FIXTURES, p) if FIXTURES else None
            if fp and os.path.exists(fp):
                w, h = Image.open(fp).size
                mn = req.get("min_pixels", 3136)
                mx = req.get("max_pixels", 200704 if "gqa_tied" in c["model"] else 1003520)
                rh, rw = common.smart_resize(h, w, 28, mn, mx)
                print("   %s: %s %dx%d -> %dx%d grid %dx%d patches %d tokens %d (pv %.0f KB)" % (
                    c.get("name"), p, w, h, rw, rh, rh // 14, rw // 14, rh * rw // 196, rh * rw // 784,
                    rh * rw // 196 * 1176 * 4 / 1e3))


def test_f32_json():
    import json
    import numpy as np
    r = np.random.default_rng(0)
    vals = np.concatenate([r.standard_normal(20000).astype(np.float32) * 3,
                           np.array([0.0, -0.0, 1e-30, 3.4e38, 1.17549435e-38], dtype=np.float32)])
    ok = True
    for v in vals:
        s = json.dumps(common.f32_json(v))
        ok = ok and np.float32(float(s)) == v and np.float32(s) == v
    check("f32_json round trips (double path and float path)", ok)


def test_tiny_tokenizer_json():
    import json
    import make_fixtures as mf
    p = os.path.join(os.path.dirname(os.path.dirname(HERE)), "third_party/tokenizer/tokenizer.json")
    if not os.path.exists(p):
        print("SKIP tiny tokenizer (no third_party/tokenizer/tokenizer.json)")
        return
    d = json.load(open(p, encoding="utf-8"))
    for name, shape in mf.MODEL_SHAPES.items():
        base = shape["tokenizer_base_vocab"]
        vocab = {t: i for t, i in d["model"]["vocab"].items() if i < base}
        merges = [m for m in d["model"]["merges"] if (m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab)]
        check("tiny vocab %s dense and closed" % name, sorted(vocab.values()) == list(range(base))
              and len(merges) == base - 256, (len(vocab), len(merges)))
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        print("SKIP tokenizers-based checks (module missing here)")


FIXTURES = None

if __name__ == "__main__":
    if len(sys.argv) > 1:
        FIXTURES = sys.argv[1]
    for f in [test_smart_resize, test_patchify, test_rope, test_template, test_names, test_configs,
              test_cap_rows, test_requests, test_f32_json, test_tiny_tokenizer_json]:
        try:
            f()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            check(f.__name__ + " crashed", False, repr(e))
    print("%d failed" % len(FAILS))
    sys.exit(1 if FAILS else 0)
