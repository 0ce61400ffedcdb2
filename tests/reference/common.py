"""Shared helpers for the vlmd parity reference scripts (hf_dump.py, make_fixtures.py).

Everything here follows /work/shared/spec/qwen2vl.md (section numbers cited as "spec §N").
Heavy imports (torch, transformers, peft, tokenizers, safetensors) happen inside functions,
so the pure parts (chat template, smart_resize, rope index, renaming, JSON layout) can be
checked on a machine without them.

Conventions
- A "shape" is a plain dict describing a tiny model (see make_fixtures.MODEL_SHAPES).
- Tensor names "hub layout" = names of the released checkpoints (spec §2.1):
  visual.*, model.embed_tokens/layers/norm, lm_head.weight (only when untied), patch embed 5-D.
- Tensor names "new layout" = model.visual.*, model.language_model.*, lm_head.weight, patch
  embed 2-D (spec §2.2).
"""

import hashlib
import json
import math
import os
import re
import sys
import traceback

# Must be set before CUDA initialises, for torch.use_deterministic_algorithms on GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
DEFAULT_MIN_PIXELS = 3136
DEFAULT_MAX_PIXELS = 1003520
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Special-token strings of the Qwen2 tokenizer that the template and the models use.
TOK_ENDOFTEXT = "<|endoftext|>"
TOK_IM_START = "<|im_start|>"
TOK_IM_END = "<|im_end|>"
TOK_VISION_START = "<|vision_start|>"
TOK_VISION_END = "<|vision_end|>"
TOK_VISION_PAD = "<|vision_pad|>"
TOK_IMAGE_PAD = "<|image_pad|>"
TOK_VIDEO_PAD = "<|video_pad|>"


# ----------------------------------------------------------------------------------------------
# Progress/log plumbing
# ----------------------------------------------------------------------------------------------

class Log:
    """Writes details to a log file; `say` also prints to stdout (keep stdout short)."""

    def __init__(self, path=None):
        self.path = path
        self.f = open(path, "a", encoding="utf-8") if path else None

    def log(self, msg):
        if self.f:
            self.f.write(str(msg) + "\n")
            self.f.flush()
        else:
            sys.stderr.write(str(msg) + "\n")

    def say(self, msg):
        print(msg, flush=True)
        if self.f:
            self.f.write(str(msg) + "\n")
            self.f.flush()


_LOG = Log(None)


def set_log(log):
    global _LOG
    _LOG = log


def log(msg):
    _LOG.log(msg)


def say(msg):
    _LOG.say(msg)


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------

def setup_determinism(threads=8, seed=0):
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except TypeError:  # very old torch
        torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    try:
        torch.backends.cudnn.deterministic = True
    except Exception:
        pass
    try:
        import transformers
        transformers.logging.set_verbosity_error()
    except Exception:
        pass


def versions():
    out = {"python": sys.version.split()[0]}
    for name in ["torch", "transformers", "peft", "tokenizers", "safetensors", "PIL", "numpy"]:
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception as e:  # noqa: BLE001
            out[name] = "missing (%s)" % type(e).__name__
    try:
        import torch
        out["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            out["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return out


# ----------------------------------------------------------------------------------------------
# Config construction
# ----------------------------------------------------------------------------------------------

def text_fields(shape):
    """Text-config kwargs (the original release's flat field names) for a shape dict."""
    return dict(
        vocab_size=shape["vocab_size"],
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_hidden_layers"],
        num_attention_heads=shape["num_attention_heads"],
        num_key_value_heads=shape["num_key_value_heads"],
        hidden_act="silu",
        max_position_embeddings=shape.get("max_position_embeddings", 32768),
        initializer_range=0.02,
        rms_norm_eps=shape.get("rms_norm_eps", 1e-6),
        use_cache=True,
        tie_word_embeddings=shape["tie_word_embeddings"],
        rope_theta=float(shape["rope_theta"]),
        use_sliding_window=False,
        sliding_window=32768,
        max_window_layers=shape["num_hidden_layers"],
        attention_dropout=0.0,
        rope_scaling={"type": "mrope", "mrope_section": list(shape["mrope_section"])},
    )


def vision_fields(shape):
    v = shape["vision"]
    return dict(
        depth=v["depth"],
        embed_dim=v["embed_dim"],
        hidden_size=shape["hidden_size"],
        hidden_act="quick_gelu",
        mlp_ratio=int(v["mlp_ratio"]),  # spec §12: must be an int in 5.17
        num_heads=v["num_heads"],
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )


def special_fields(shape):
    s = shape["special"]
    return dict(
        image_token_id=s["image"],
        video_token_id=s["video"],
        vision_start_token_id=s["vision_start"],
        vision_end_token_id=s["vision_end"],
        bos_token_id=s["bos"],
        eos_token_id=s["eos"],
    )


def build_config(shape):
    """Qwen2VLConfig for a shape; the `text_config=..., vision_config=...` form first
    (as hf_anchor.py), flat kwargs as the fallback. Returns (config, path_taken)."""
    from transformers import Qwen2VLConfig
    text = text_fields(shape)
    vision = vision_fields(shape)
    special = special_fields(shape)
    try:
        cfg = Qwen2VLConfig(text_config=dict(text), vision_config=vision,
                            tie_word_embeddings=shape["tie_word_embeddings"], **special)
        path = "text_config="
    except Exception as e:  # noqa: BLE001
        log("build_config: text_config form failed: %r; trying flat kwargs" % (e,))
        cfg = Qwen2VLConfig(vision_config=vision, **text, **special)
        path = "flat"
    return cfg, path


def text_config_of(cfg):
    tc = getattr(cfg, "text_config", None)
    if tc is None and hasattr(cfg, "get_text_config"):
        tc = cfg.get_text_config()
    return tc if tc is not None else cfg


def config_readback(cfg):
    """The values the model will really use, read through the 5.x and 4.x attribute paths."""
    tc = text_config_of(cfg)
    rp = getattr(tc, "rope_parameters", None) or {}
    rs = getattr(tc, "rope_scaling", None) or getattr(cfg, "rope_scaling", None) or {}
    if isinstance(rp, dict) and "rope_theta" in rp:
        theta = rp["rope_theta"]
    else:
        theta = getattr(tc, "rope_theta", getattr(cfg, "rope_theta", None))
    mrope = None
    for d in (rp, rs):
        if isinstance(d, dict) and "mrope_section" in d:
            mrope = list(d["mrope_section"])
            break
    tie_top = getattr(cfg, "tie_word_embeddings", None)
    tie_text = getattr(tc, "tie_word_embeddings", None)
    return dict(
        vocab_size=getattr(tc, "vocab_size", None),
        hidden_size=getattr(tc, "hidden_size", None),
        num_hidden_layers=getattr(tc, "num_hidden_layers", None),
        num_attention_heads=getattr(tc, "num_attention_heads", None),
        num_key_value_heads=getattr(tc, "num_key_value_heads", None),
        intermediate_size=getattr(tc, "intermediate_size", None),
        rms_norm_eps=getattr(tc, "rms_norm_eps", None),
        rope_theta=theta,
        mrope_section=mrope,
        tie_word_embeddings_top=tie_top,
        tie_word_embeddings_text=tie_text,
        image_token_id=getattr(cfg, "image_token_id", None),
        vision_depth=getattr(cfg.vision_config, "depth", None),
        vision_embed_dim=getattr(cfg.vision_config, "embed_dim", None),
        vision_mlp_ratio=getattr(cfg.vision_config, "mlp_ratio", None),
        vision_num_heads=getattr(cfg.vision_config, "num_heads", None),
        vision_hidden_size=getattr(cfg.vision_config, "hidden_size", None),
        attn_implementation=getattr(cfg, "_attn_implementation", None),
    )


def check_config_matches(cfg, shape):
    """List of mismatch strings between a loaded config and the intended shape (empty = ok)."""
    rb = config_readback(cfg)
    want = dict(vocab_size=shape["vocab_size"], hidden_size=shape["hidden_size"],
                num_hidden_layers=shape["num_hidden_layers"],
                num_attention_heads=shape["num_attention_heads"],
                num_key_value_heads=shape["num_key_value_heads"],
                intermediate_size=shape["intermediate_size"],
                rope_theta=float(shape["rope_theta"]),
                mrope_section=list(shape["mrope_section"]),
                image_token_id=shape["special"]["image"],
                vision_depth=shape["vision"]["depth"],
                vision_embed_dim=shape["vision"]["embed_dim"],
                vision_mlp_ratio=shape["vision"]["mlp_ratio"],
                vision_num_heads=shape["vision"]["num_heads"],
                vision_hidden_size=shape["hidden_size"])
    bad = []
    for k, v in want.items():
        got = rb.get(k)
        if isinstance(v, float):
            ok = got is not None and abs(float(got) - v) <= 1e-9 * max(1.0, abs(v))
        else:
            ok = got == v
        if not ok:
            bad.append("%s: want %r got %r" % (k, v, got))
    return bad


# ----------------------------------------------------------------------------------------------
# Model construction, init, attention
# ----------------------------------------------------------------------------------------------

def set_eager(model, attn="eager"):
    """Switches a model (all sub-configs) to the given attention implementation."""
    done = None
    try:
        model.set_attn_implementation(attn)
        done = "set_attn_implementation"
    except Exception as e:  # noqa: BLE001
        log("set_attn_implementation failed: %r; setting config fields" % (e,))
        for c in [model.config, getattr(model.config, "text_config", None),
                  getattr(model.config, "vision_config", None)]:
            if c is not None:
                try:
                    c._attn_implementation = attn
                except Exception:  # noqa: BLE001
                    pass
        done = "config._attn_implementation"
    return done


def find_module(model, suffixes):
    """First (name, module) whose dotted name equals or ends with one of `suffixes` (in order)."""
    names = dict(model.named_modules())
    for s in suffixes:
        for n, m in names.items():
            if n == s or n.endswith("." + s):
                return n, m
    return None, None


def embed_and_head(model):
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return emb, head


def is_tied(model):
    emb, head = embed_and_head(model)
    return emb.data_ptr() == head.data_ptr()


def perturb_norms_and_biases(model, seed):
    """Adds small seeded noise to every norm weight/bias and every other bias, so that bugs
    that ignore them (ones/zeros) cannot hide. Deterministic: sorted names, own generator."""
    import torch
    g = torch.Generator().manual_seed(seed)
    norm_params = set()
    for mname, m in sorted(model.named_modules(), key=lambda t: t[0]):
        cls = type(m).__name__
        if isinstance(m, torch.nn.LayerNorm) or "RMSNorm" in cls or "LayerNorm" in cls:
            for pname, p in m.named_parameters(recurse=False):
                full = (mname + "." + pname) if mname else pname
                norm_params.add(full)
    count = 0
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda t: t[0]):
            if name in norm_params:
                scale = 0.1 if name.endswith("weight") else 0.05
            elif name.endswith(".bias"):
                scale = 0.05
            else:
                continue
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * scale)
            count += 1
    return count, sorted(norm_params)


def sanity_fix_params(model, seed):
    """Every parameter finite and not constant. Fills any that is not with N(0, 0.02) and
    returns the list of names it had to fix (expected: empty)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    fixed = []
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda t: t[0]):
            bad = not torch.isfinite(p).all().item()
            if p.numel() > 1 and not bad:
                bad = float(p.float().std().item()) == 0.0
            if bad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
                fixed.append(name)
    return fixed


def round_params_to(model, dtype_name):
    """Rounds every parameter to bfloat16 (keeping float32 storage), so that a checkpoint stored
    in bf16 reproduces the in-memory model exactly."""
    import torch
    if dtype_name != "bfloat16":
        return
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(p.to(torch.bfloat16).to(p.dtype))


def create_model(shape, seed, attn="eager"):
    """Seeded tiny Qwen2VLForConditionalGeneration in float32 on CPU, eval mode, with perturbed
    norms/biases. Returns (model, info dict)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    cfg, path = build_config(shape)
    try:
        cfg._attn_implementation = attn
    except Exception:  # noqa: BLE001
        pass
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg)
    model = model.float().eval()
    set_eager(model, attn)
    n_pert, _ = perturb_norms_and_biases(model, seed + 1)
    fixed = sanity_fix_params(model, seed + 2)
    round_params_to(model, shape.get("storage_dtype", "float32"))
    info = dict(config_path=path, perturbed=n_pert, fixed_params=fixed, tied=is_tied(model),
                config_mismatches=check_config_matches(model.config, shape),
                n_params=int(sum(p.numel() for p in model.parameters())))
    return model, info


def load_pretrained(model_dir, dtype="float32", device="cpu", attn="eager"):
    """from_pretrained with an explicit dtype and attention; returns (model, loading_info, how)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    how = []
    info = None
    kw = dict(attn_implementation=attn, output_loading_info=True)
    try:
        model, info = Qwen2VLForConditionalGeneration.from_pretrained(model_dir, dtype=td, **kw)
        how.append("dtype=")
    except TypeError as e:
        log("from_pretrained(dtype=) TypeError %r; trying torch_dtype=" % (e,))
        model, info = Qwen2VLForConditionalGeneration.from_pretrained(model_dir, torch_dtype=td, **kw)
        how.append("torch_dtype=")
    pd = next(model.parameters()).dtype
    if pd != td:
        how.append("cast %s->%s" % (pd, td))
        model = model.to(td)
    set_eager(model, attn)
    model = model.to(device).eval()
    info = {k: sorted(list(v)) if isinstance(v, (set, list, tuple)) else str(v)
            for k, v in (info or {}).items()}
    return model, info, ",".join(how)


def state_dict_diff(m1, m2):
    """(max abs difference over the parameters both models have, by in-memory name; the name
    of the worst one; names only in m1; names only in m2)."""
    s1 = m1.state_dict()
    s2 = m2.state_dict()
    only1 = sorted(set(s1) - set(s2))
    only2 = sorted(set(s2) - set(s1))
    worst, worst_name = 0.0, None
    for k in sorted(set(s1) & set(s2)):
        a, b = s1[k], s2[k]
        if a.numel() != b.numel():
            return float("inf"), "numel " + k, only1, only2
        if a.numel() == 0:
            continue
        d = float((a.float().cpu().reshape(-1) - b.float().cpu().reshape(-1)).abs().max().item())
        if worst_name is None or d > worst:
            worst, worst_name = d, k
    return worst, worst_name, only1, only2


def unwrap(model):
    """The transformers model inside a PeftModel (LoRA layers are injected into it in place,
    so calling it applies the adapter); the model itself otherwise."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


# ----------------------------------------------------------------------------------------------
# Tensor naming (spec §2)
# ----------------------------------------------------------------------------------------------

_SKIP_KEY = re.compile(r"(^|\.)(inv_freq|original_inv_freq)$")


def to_hub_name(k):
    """In-memory state-dict key (any transformers version) -> released-checkpoint name."""
    if k.startswith("model.visual."):
        return k[len("model."):]
    if k.startswith("visual."):
        return k
    if k.startswith("model.language_model."):
        return "model." + k[len("model.language_model."):]
    if k.startswith("language_model.model."):
        return "model." + k[len("language_model.model."):]
    if k.startswith("language_model."):
        return "model." + k[len("language_model."):]
    if k.startswith("model."):
        return k
    if k == "lm_head.weight":
        return k
    raise ValueError("unexpected state-dict key %r" % k)


def hub_to_new_name(k):
    if k.startswith("visual."):
        return "model." + k
    if k.startswith("model."):
        return "model.language_model." + k[len("model."):]
    if k == "lm_head.weight":
        return k
    raise ValueError("unexpected hub key %r" % k)


def expected_hub_keys(shape):
    """The tensor names (and shapes) a released checkpoint of this shape has (spec §2.1)."""
    H, I, V = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    nh, nkv = shape["num_attention_heads"], shape["num_key_value_heads"]
    d = H // nh
    v = shape["vision"]
    E = v["embed_dim"]
    M = E * int(v["mlp_ratio"])
    ctx = E * 4  # merge 2x2
    keys = {"visual.patch_embed.proj.weight": [E, 3, 2, 14, 14]}
    for b in range(v["depth"]):
        p = "visual.blocks.%d." % b
        keys.update({p + "norm1.weight": [E], p + "norm1.bias": [E],
                     p + "attn.qkv.weight": [3 * E, E], p + "attn.qkv.bias": [3 * E],
                     p + "attn.proj.weight": [E, E], p + "attn.proj.bias": [E],
                     p + "norm2.weight": [E], p + "norm2.bias": [E],
                     p + "mlp.fc1.weight": [M, E], p + "mlp.fc1.bias": [M],
                     p + "mlp.fc2.weight": [E, M], p + "mlp.fc2.bias": [E]})
    keys.update({"visual.merger.ln_q.weight": [E], "visual.merger.ln_q.bias": [E],
                 "visual.merger.mlp.0.weight": [ctx, ctx], "visual.merger.mlp.0.bias": [ctx],
                 "visual.merger.mlp.2.weight": [H, ctx], "visual.merger.mlp.2.bias": [H]})
    keys["model.embed_tokens.weight"] = [V, H]
    for l in range(shape["num_hidden_layers"]):
        p = "model.layers.%d." % l
        keys.update({p + "input_layernorm.weight": [H],
                     p + "self_attn.q_proj.weight": [nh * d, H], p + "self_attn.q_proj.bias": [nh * d],
                     p + "self_attn.k_proj.weight": [nkv * d, H], p + "self_attn.k_proj.bias": [nkv * d],
                     p + "self_attn.v_proj.weight": [nkv * d, H], p + "self_attn.v_proj.bias": [nkv * d],
                     p + "self_attn.o_proj.weight": [H, nh * d],
                     p + "post_attention_layernorm.weight": [H],
                     p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                     p + "mlp.down_proj.weight": [H, I]})
    keys["model.norm.weight"] = [H]
    if not shape["tie_word_embeddings"]:
        keys["lm_head.weight"] = [V, H]
    return keys


def hub_state_dict(model, shape):
    """{hub name: contiguous tensor} from a model, with the patch embed 5-D and lm_head only
    when untied. Also returns a list of problems (names that do not match spec §2.1)."""
    import torch
    v = shape["vision"]
    E = v["embed_dim"]
    out = {}
    for k, t in model.state_dict().items():
        if _SKIP_KEY.search(k):
            continue
        hk = to_hub_name(k)
        t = t.detach().cpu()
        if hk == "visual.patch_embed.proj.weight":
            t = t.reshape(E, 3, 2, 14, 14)
        if hk == "lm_head.weight" and shape["tie_word_embeddings"]:
            continue
        out[hk] = t.contiguous().clone()
    problems = []
    exp = expected_hub_keys(shape)
    for k in sorted(set(exp) - set(out)):
        problems.append("missing " + k)
    for k in sorted(set(out) - set(exp)):
        problems.append("unexpected " + k)
    for k in sorted(set(out) & set(exp)):
        if list(out[k].shape) != exp[k]:
            problems.append("shape %s %s != spec %s" % (k, list(out[k].shape), exp[k]))
    if shape["tie_word_embeddings"]:
        emb, head = embed_and_head(model)
        if not torch.equal(emb, head):
            problems.append("tied model but lm_head != embed_tokens")
    return out, problems


def _cast(tensors, dtype_name):
    import torch
    td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    return {k: (v.to(td) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}


def save_tensors(path, tensors, metadata=None):
    """safetensors.torch.save_file with contiguous, unshared tensors and format=pt metadata."""
    from safetensors.torch import save_file
    md = {"format": "pt"}
    if metadata:
        md.update({str(k): str(v) for k, v in metadata.items()})
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(clean, path, metadata=md)


def write_hub_layout(model, shape, out_dir, config_dict, dtype_name="float32"):
    """Single model.safetensors with hub names + the given config.json dict."""
    os.makedirs(out_dir, exist_ok=True)
    sd, problems = hub_state_dict(model, shape)
    save_tensors(os.path.join(out_dir, "model.safetensors"), _cast(sd, dtype_name))
    if config_dict is not None:
        write_json(os.path.join(out_dir, "config.json"), config_dict)
    return sorted(sd), problems


def write_new_layout(model, shape, out_dir, config_dict, dtype_name="float32", shards=2, patch_2d=True):
    """New names (model.visual.*, model.language_model.*), 2-D patch embed (5-D when
    patch_2d=False), sharded with model.safetensors.index.json."""
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f.endswith(".safetensors") or f.endswith(".index.json"):
            os.remove(os.path.join(out_dir, f))
    sd, problems = hub_state_dict(model, shape)
    new = {}
    for k, t in sd.items():
        nk = hub_to_new_name(k)
        if nk == "model.visual.patch_embed.proj.weight" and patch_2d:
            t = t.reshape(t.shape[0], -1)
        new[nk] = t
    new = _cast(new, dtype_name)
    names = sorted(new)
    # split by bytes into `shards` roughly equal parts, keeping sorted order
    total = sum(new[n].numel() * new[n].element_size() for n in names)
    files = ["model-%05d-of-%05d.safetensors" % (i + 1, shards) for i in range(shards)]
    weight_map, buckets, acc, idx = {}, [dict() for _ in range(shards)], 0, 0
    for n in names:
        size = new[n].numel() * new[n].element_size()
        if idx < shards - 1 and acc >= total * (idx + 1) / shards:
            idx += 1
        buckets[idx][n] = new[n]
        weight_map[n] = files[idx]
        acc += size
    for f, b in zip(files, buckets):
        if not b:
            raise RuntimeError("empty shard %s" % f)
        save_tensors(os.path.join(out_dir, f), b)
    write_json(os.path.join(out_dir, "model.safetensors.index.json"),
               {"metadata": {"total_size": int(total)}, "weight_map": weight_map})
    if config_dict is not None:
        write_json(os.path.join(out_dir, "config.json"), config_dict)
    return names, problems


def safetensors_keys(path):
    """{name: [dtype, shape]} of a .safetensors file or of every file of a directory."""
    from safetensors import safe_open
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(path, f) for f in os.listdir(path) if f.endswith(".safetensors"))
    out = {}
    for f in files:
        with safe_open(f, framework="pt") as h:
            for k in h.keys():
                t = h.get_slice(k)
                out[k] = [str(t.get_dtype()), list(t.get_shape())]
    return out


# ----------------------------------------------------------------------------------------------
# Config JSON dicts in the layouts found in the wild (spec §1.2)
# ----------------------------------------------------------------------------------------------

def flat_config_dict(shape, torch_dtype="float32", transformers_version="4.41.2"):
    """Layout 1 (original Qwen release): text fields flat, full vision_config with in_chans and
    spatial_patch_size, rope_scaling {"type":"mrope", ...}."""
    s = shape["special"]
    v = shape["vision"]
    t = text_fields(shape)
    d = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": s["bos"],
        "eos_token_id": s["eos"],
        "vision_start_token_id": s["vision_start"],
        "vision_end_token_id": s["vision_end"],
        "vision_token_id": s["vision_pad"],
        "image_token_id": s["image"],
        "video_token_id": s["video"],
        "hidden_act": "silu",
        "hidden_size": t["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": t["intermediate_size"],
        "max_position_embeddings": t["max_position_embeddings"],
        "max_window_layers": t["max_window_layers"],
        "model_type": "qwen2_vl",
        "num_attention_heads": t["num_attention_heads"],
        "num_hidden_layers": t["num_hidden_layers"],
        "num_key_value_heads": t["num_key_value_heads"],
        "rms_norm_eps": t["rms_norm_eps"],
        "rope_theta": t["rope_theta"],
        "sliding_window": 32768,
        "tie_word_embeddings": bool(t["tie_word_embeddings"]),
        "torch_dtype": torch_dtype,
        "transformers_version": transformers_version,
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": v["depth"], "embed_dim": v["embed_dim"], "mlp_ratio": int(v["mlp_ratio"]),
            "num_heads": v["num_heads"], "in_chans": 3, "hidden_size": shape["hidden_size"],
            "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": list(shape["mrope_section"])},
        "vocab_size": t["vocab_size"],
    }
    return d


def config_45x_dict(shape, torch_dtype="bfloat16", transformers_version="4.57.1"):
    """Layout 3 (~4.5x): flat fields AND a text_config sub-dict; rope_scaling with
    rope_type/type "default"; vision_config stripped to non-default keys (layout 2 habit),
    so a loader must fill patch_size/spatial_merge_size/temporal_patch_size/hidden_act."""
    d = flat_config_dict(shape, torch_dtype, transformers_version)
    rs = {"mrope_section": list(shape["mrope_section"]), "rope_type": "default", "type": "default"}
    d["rope_scaling"] = dict(rs)
    v = shape["vision"]
    d["vision_config"] = {"depth": v["depth"], "embed_dim": v["embed_dim"],
                          "hidden_size": shape["hidden_size"], "in_chans": 3,
                          "mlp_ratio": int(v["mlp_ratio"]), "model_type": "qwen2_vl",
                          "num_heads": v["num_heads"], "spatial_patch_size": 14}
    t = text_fields(shape)
    tc = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": shape["special"]["bos"],
        "eos_token_id": shape["special"]["eos"],
        "hidden_act": "silu",
        "hidden_size": t["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": t["intermediate_size"],
        "layer_types": ["full_attention"] * t["num_hidden_layers"],
        "max_position_embeddings": t["max_position_embeddings"],
        "max_window_layers": t["max_window_layers"],
        "model_type": "qwen2_vl_text",
        "num_attention_heads": t["num_attention_heads"],
        "num_hidden_layers": t["num_hidden_layers"],
        "num_key_value_heads": t["num_key_value_heads"],
        "rms_norm_eps": t["rms_norm_eps"],
        "rope_scaling": dict(rs),
        "rope_theta": t["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": bool(t["tie_word_embeddings"]),
        "torch_dtype": torch_dtype,
        "use_cache": True,
        "use_sliding_window": False,
        "vision_end_token_id": shape["special"]["vision_end"],
        "vision_start_token_id": shape["special"]["vision_start"],
        "vision_token_id": shape["special"]["vision_pad"],
        "vocab_size": t["vocab_size"],
    }
    d["text_config"] = tc
    return d


def write_json(path, obj, indent=2):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def f32_json(x):
    """A Python float for a float32 value that json prints short AND that reads back to the
    same float32 both by direct float32 parsing and by double parsing + cast (checked)."""
    import numpy as np
    v = np.float32(x)
    short = float(str(v))  # numpy's shortest repr that round-trips the float32
    if np.float32(short) == v:
        return short
    return float(v)  # the exact double of the float32 (longer, always exact)


# ----------------------------------------------------------------------------------------------
# Image preprocessing (spec §3, §12)
# ----------------------------------------------------------------------------------------------

def smart_resize(height, width, factor=28, min_pixels=DEFAULT_MIN_PIXELS,
                 max_pixels=DEFAULT_MAX_PIXELS):
    """spec §3.2 (5.x form, with the max(factor, .) clamp). Python round = half-even."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("absolute aspect ratio must be smaller than 200, got %s"
                         % (max(height, width) / min(height, width)))
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


_PROC_CACHE = {}


def make_image_processor(min_pixels, max_pixels):
    """Qwen2VLImageProcessor with min/max pixels passed explicitly. Returns (proc, how)."""
    key = (int(min_pixels), int(max_pixels))
    if key in _PROC_CACHE:
        return _PROC_CACHE[key]
    from transformers import Qwen2VLImageProcessor
    size = {"shortest_edge": int(min_pixels), "longest_edge": int(max_pixels)}
    attempts = [
        # size is always given as a fresh dict: 5.x __init__ writes min/max_pixels into the
        # dict it is handed (without `size`, into the class attribute shared by all instances)
        ("min_pixels+max_pixels+size", dict(min_pixels=int(min_pixels), max_pixels=int(max_pixels), size=dict(size))),
        ("size", dict(size=dict(size))),
        ("min_pixels+max_pixels", dict(min_pixels=int(min_pixels), max_pixels=int(max_pixels))),
    ]
    last = None
    for how, kw in attempts:
        try:
            proc = Qwen2VLImageProcessor(**kw)
            eff = getattr(proc, "size", None)
            se = le = None
            if isinstance(eff, dict):
                se, le = eff.get("shortest_edge"), eff.get("longest_edge")
            elif eff is not None:  # 5.x SizeDict
                se, le = getattr(eff, "shortest_edge", None), getattr(eff, "longest_edge", None)
            if se is not None and le is not None:
                if (int(se), int(le)) != key:
                    log("processor %s: size=%r does not match %r; next form" % (how, eff, key))
                    last = "size mismatch %r" % (eff,)
                    continue
            res = (proc, "%s (%s)" % (how, type(proc).__name__))
            _PROC_CACHE[key] = res
            return res
        except Exception as e:  # noqa: BLE001
            last = repr(e)
            log("processor form %s failed: %r" % (how, e))
    raise RuntimeError("could not build Qwen2VLImageProcessor for %r: %s" % (key, last))


def open_image(path):
    from PIL import Image
    im = Image.open(path)
    im.load()
    return im


def preprocess_images(paths, min_pixels, max_pixels):
    """Processor output for a list of image files: (pixel_values float32 [P,1176],
    image_grid_thw int64 [N,3], how)."""
    import torch
    proc, how = make_image_processor(min_pixels, max_pixels)
    images = [open_image(p) for p in paths]
    out = proc(images=images, return_tensors="pt")
    pv = out["pixel_values"]
    thw = out["image_grid_thw"]
    pv = torch.as_tensor(pv).to(torch.float32)
    thw = torch.as_tensor(thw).to(torch.int64)
    return pv, thw, how


def model_dir_pixels(model_dir):
    """(min_pixels, max_pixels) from <model_dir>/preprocessor_config.json, else class defaults."""
    p = os.path.join(model_dir, "preprocessor_config.json") if model_dir else None
    mn, mx = DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS
    if p and os.path.exists(p):
        d = read_json(p)
        size = d.get("size") or {}
        mn = d.get("min_pixels", size.get("shortest_edge", mn))
        mx = d.get("max_pixels", size.get("longest_edge", mx))
    return int(mn), int(mx)


def patchify(img_f32_chw, temporal=2, patch=14, merge=2):
    """spec §3.4 for one image: float [C,H,W] -> [gh*gw (t=1), C*temporal*patch*patch]."""
    C, H, W = img_f32_chw.shape
    frames = img_f32_chw[None].repeat(temporal, 1, 1, 1)  # [tp, C, H, W]
    gt, gh, gw = 1, H // patch, W // patch
    x = frames.reshape(gt, temporal, C, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, C * temporal * patch * patch).contiguous(), (gt, gh, gw)


def normalize_u8(u8_chw, variant="f32"):
    """spec §3.3 fast path: (x - 255*mean) / (255*std) in float32. variant "f32": mean/std as
    float32 tensors times 255 in float32; "f64": 255*mean in double, then float32."""
    import torch
    if variant == "f32":
        mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=torch.float32) * 255
        std = torch.tensor(OPENAI_CLIP_STD, dtype=torch.float32) * 255
    else:
        mean = torch.tensor([m * (1.0 / (1.0 / 255)) for m in OPENAI_CLIP_MEAN], dtype=torch.float32)
        std = torch.tensor([s * (1.0 / (1.0 / 255)) for s in OPENAI_CLIP_STD], dtype=torch.float32)
    x = u8_chw.to(torch.float32)
    return (x - mean[:, None, None]) / std[:, None, None]


def resize_u8_reference(pil_image, h, w):
    """uint8 RGB [3,h,w] via torch interpolate bicubic antialias on the uint8 CHW tensor of
    convert("RGB") (spec §12)."""
    import numpy as np
    import torch
    rgb = pil_image.convert("RGB")
    a = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    r = torch.nn.functional.interpolate(a[None], size=(h, w), mode="bicubic", antialias=True,
                                        align_corners=False)[0]
    if r.dtype != torch.uint8:
        raise RuntimeError("interpolate returned %s, not uint8" % r.dtype)
    return r


# ----------------------------------------------------------------------------------------------
# Chat template (spec §5.1) and request -> model inputs
# ----------------------------------------------------------------------------------------------

def render_chat(messages, add_generation_prompt=True, add_vision_id=False):
    """The Qwen2-VL Instruct template, written from spec §5.1. Returns (text, image paths in
    order)."""
    out = []
    images = []
    img_count = 0
    vid_count = 0
    for i, m in enumerate(messages):
        if i == 0 and m["role"] != "system":
            out.append(TOK_IM_START + "system\n" + DEFAULT_SYSTEM_PROMPT + TOK_IM_END + "\n")
        out.append(TOK_IM_START + m["role"] + "\n")
        c = m["content"]
        if isinstance(c, str):
            out.append(c + TOK_IM_END + "\n")
            continue
        for item in c:
            if item.get("type") == "image" or "image" in item or "image_url" in item:
                img_count += 1
                if add_vision_id:
                    out.append("Picture %d: " % img_count)
                out.append(TOK_VISION_START + TOK_IMAGE_PAD + TOK_VISION_END)
                images.append(item.get("image", item.get("image_url")))
            elif item.get("type") == "video" or "video" in item:
                vid_count += 1
                if add_vision_id:
                    out.append("Video %d: " % vid_count)
                out.append(TOK_VISION_START + TOK_VIDEO_PAD + TOK_VISION_END)
            elif "text" in item:
                out.append(item["text"])
        out.append(TOK_IM_END + "\n")
    if add_generation_prompt:
        out.append(TOK_IM_START + "assistant\n")
    return "".join(out), images


def load_tokenizer(model_dir=None, tokenizer_path=None):
    """tokenizers.Tokenizer from --tokenizer, else <model_dir>/tokenizer.json, else None."""
    from tokenizers import Tokenizer
    for p in [tokenizer_path, os.path.join(model_dir, "tokenizer.json") if model_dir else None]:
        if p and os.path.isfile(p):
            return Tokenizer.from_file(p), p
    return None, None


def resolve_path(p, base_dir):
    if p is None:
        return None
    if os.path.isabs(p) or base_dir is None:
        return p
    return os.path.join(base_dir, p)


def expand_image_tokens(ids, image_token_id, counts):
    """spec §5.2: the k-th image token -> counts[k] copies."""
    n = sum(1 for t in ids if t == image_token_id)
    if n != len(counts):
        raise ValueError("%d image tokens in the prompt but %d images" % (n, len(counts)))
    out, k = [], 0
    for t in ids:
        if t == image_token_id:
            out.extend([image_token_id] * counts[k])
            k += 1
        else:
            out.append(t)
    return out


def build_inputs(request, config, base_dir=None, model_dir=None, tokenizer=None):
    """Request dict -> (inputs dict of CPU tensors, info dict). See README for the format."""
    import torch
    info = {}
    image_token_id = int(config.image_token_id)
    merge = int(getattr(config.vision_config, "spatial_merge_size", 2))
    if "messages" in request:
        if tokenizer is None:
            raise ValueError("a messages request needs a tokenizer (model dir tokenizer.json or --tokenizer)")
        text, image_paths = render_chat(request["messages"],
                                        add_generation_prompt=request.get("add_generation_prompt", True))
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        tid = tokenizer.token_to_id(TOK_IMAGE_PAD)
        if image_paths and tid != image_token_id:
            raise ValueError("tokenizer id of %s is %r but config.image_token_id is %d"
                             % (TOK_IMAGE_PAD, tid, image_token_id))
        info["rendered_text"] = text
        if request.get("images"):
            raise ValueError("a messages request takes its images from the messages, not 'images'")
    else:
        ids = [int(t) for t in request["prompt_ids"]]
        image_paths = list(request.get("images", []))
    dmin, dmax = model_dir_pixels(model_dir)
    min_px = int(request.get("min_pixels", dmin))
    max_px = int(request.get("max_pixels", dmax))
    info.update(min_pixels=min_px, max_pixels=max_px, images=image_paths)
    inputs = {}
    if image_paths:
        paths = [resolve_path(p, base_dir) for p in image_paths]
        pv, thw, how = preprocess_images(paths, min_px, max_px)
        info["processor"] = how
        counts = [int(t * h * w) // (merge * merge) for t, h, w in thw.tolist()]
        ids = expand_image_tokens(ids, image_token_id, counts)
        inputs["pixel_values"] = pv
        inputs["image_grid_thw"] = thw
        info["image_token_counts"] = counts
    elif any(t == image_token_id for t in ids):
        raise ValueError("prompt has image tokens but the request has no images")
    input_ids = torch.tensor([ids], dtype=torch.int64)
    inputs["input_ids"] = input_ids
    inputs["attention_mask"] = torch.ones_like(input_ids)
    inputs["mm_token_type_ids"] = (input_ids == image_token_id).to(torch.int64)
    vocab = int(config_readback(config)["vocab_size"])
    if max(ids) >= vocab or min(ids) < 0:
        raise ValueError("token id out of range [0,%d): min %d max %d" % (vocab, min(ids), max(ids)))
    return inputs, info


# ----------------------------------------------------------------------------------------------
# M-RoPE positions (spec §6.1), own implementation for cross-checking HF's
# ----------------------------------------------------------------------------------------------

def rope_index_reference(ids, grids, image_token_id, video_token_id, vision_start_token_id, merge=2,
                         video_grids=()):
    """spec §6.1 for one unpadded sequence. Returns (pos [3][L] lists, delta int)."""
    L = len(ids)
    streams = [[], [], []]

    def next_start():
        return (max(max(s) for s in streams) + 1) if streams[0] else 0

    n_img = sum(1 for i in range(L - 1) if ids[i] == vision_start_token_id and ids[i + 1] == image_token_id)
    n_vid = sum(1 for i in range(L - 1) if ids[i] == vision_start_token_id and ids[i + 1] == video_token_id)
    img_i = vid_i = 0
    st = 0
    for _ in range(n_img + n_vid):
        ed_img = next((j for j in range(st, L) if ids[j] == image_token_id), L + 1) if img_i < n_img else L + 1
        ed_vid = next((j for j in range(st, L) if ids[j] == video_token_id), L + 1) if vid_i < n_vid else L + 1
        if ed_img < ed_vid:
            t, h, w = grids[img_i]
            img_i += 1
            ed = ed_img
        else:
            t, h, w = video_grids[vid_i]
            vid_i += 1
            ed = ed_vid
        lt, lh, lw = int(t), int(h) // merge, int(w) // merge
        s = next_start()
        text_len = ed - st
        for i in range(text_len):
            for k in range(3):
                streams[k].append(s + i)
        base = s + text_len
        for ti in range(lt):
            for hi in range(lh):
                for wi in range(lw):
                    streams[0].append(base + ti)
                    streams[1].append(base + hi)
                    streams[2].append(base + wi)
        st = ed + lt * lh * lw
    if st < L:
        s = next_start()
        for i in range(L - st):
            for k in range(3):
                streams[k].append(s + i)
    delta = max(max(s) for s in streams) + 1 - L
    return streams, delta


def hf_rope_index(model, inputs):
    """Calls the model's get_rope_index (5.17: Qwen2VLModel, keyword args incl.
    mm_token_type_ids, spec §12) trying several forms. Returns (pos [3,1,L], delta, how)."""
    owners = []
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "get_rope_index"):
        owners.append(("model.model", inner))
    if hasattr(model, "get_rope_index"):
        owners.append(("model", model))
    base = dict(input_ids=inputs["input_ids"], image_grid_thw=inputs.get("image_grid_thw"),
                video_grid_thw=None, attention_mask=inputs["attention_mask"])
    errors = []
    for oname, owner in owners:
        for form in ("kw+mm", "kw", "positional"):
            try:
                if form == "kw+mm":
                    r = owner.get_rope_index(mm_token_type_ids=inputs["mm_token_type_ids"], **base)
                elif form == "kw":
                    r = owner.get_rope_index(**base)
                else:
                    r = owner.get_rope_index(base["input_ids"], base["image_grid_thw"], None,
                                             base["attention_mask"])
                pos, delta = r[0], r[1]
                return pos, delta, "%s.get_rope_index(%s)" % (oname, form)
            except Exception as e:  # noqa: BLE001
                errors.append("%s/%s: %r" % (oname, form, e))
    raise RuntimeError("get_rope_index failed in every form: " + " | ".join(errors))


def reset_rope_cache(model):
    for m in [model, getattr(model, "model", None)]:
        if m is not None and hasattr(m, "rope_deltas"):
            try:
                m.rope_deltas = None
            except Exception:  # noqa: BLE001
                pass


# ----------------------------------------------------------------------------------------------
# Forward dump and greedy generation
# ----------------------------------------------------------------------------------------------

def _to(inputs, device):
    return {k: v.to(device) for k, v in inputs.items()}


def forward_dump(model, inputs, device="cpu"):
    """One forward pass (no position_ids given: the model computes them as generate's prefill
    does). Returns (tensors dict of float32/int64 CPU tensors, meta dict)."""
    import torch
    meta = {}
    captured = {}
    hooks = []
    mname, merger = find_module(model, ["visual.merger"])
    if merger is not None:
        hooks.append(merger.register_forward_hook(
            lambda m, a, o: captured.__setitem__("image_embeds", o[0] if isinstance(o, (tuple, list)) else o)))
    nname, norm = find_module(model, ["language_model.norm", "model.norm"])
    if norm is not None:
        def norm_hook(m, a, o):
            captured["norm_in"] = a[0]
            captured["norm_out"] = o
        hooks.append(norm.register_forward_hook(norm_hook))
    rname, rot = None, None
    for n, m in model.named_modules():
        if n.endswith("rotary_emb") and "visual" not in n:
            rname, rot = n, m
            break
    if rot is not None:
        def rot_hook(m, args, kwargs, out):
            pid = args[1] if len(args) > 1 else kwargs.get("position_ids")
            if pid is not None and "position_ids_used" not in captured:
                captured["position_ids_used"] = pid.detach().clone()
        try:
            hooks.append(rot.register_forward_hook(rot_hook, with_kwargs=True))
        except TypeError:  # torch < 2.0: positional arguments only
            def rot_pre(m, args):
                if len(args) > 1 and "position_ids_used" not in captured:
                    captured["position_ids_used"] = args[1].detach().clone()
            hooks.append(rot.register_forward_pre_hook(rot_pre))
    meta["hooked"] = {"merger": mname, "norm": nname, "rotary": rname}
    dev_inputs = _to(inputs, device)
    reset_rope_cache(model)
    try:
        with torch.no_grad():
            try:
                out = model(**dev_inputs, output_hidden_states=True, use_cache=False, return_dict=True)
                meta["forward"] = "with mm_token_type_ids"
            except TypeError as e:
                log("forward with mm_token_type_ids raised %r; retrying without" % (e,))
                d2 = {k: v for k, v in dev_inputs.items() if k != "mm_token_type_ids"}
                out = model(**d2, output_hidden_states=True, use_cache=False, return_dict=True)
                meta["forward"] = "without mm_token_type_ids"
    finally:
        for h in hooks:
            h.remove()
    t = {}
    if "pixel_values" in inputs:
        t["pixel_values"] = inputs["pixel_values"].to(torch.float32)
        t["image_grid_thw"] = inputs["image_grid_thw"].to(torch.int64)
    t["input_ids"] = inputs["input_ids"][0].to(torch.int64)
    t["logits"] = out.logits[0].detach().float().cpu()
    if out.hidden_states is not None:
        t["hidden_states"] = torch.stack([h[0].detach().float().cpu() for h in out.hidden_states])
    if "image_embeds" in captured:
        t["image_embeds"] = captured["image_embeds"].detach().float().cpu()
        n_img_tok = int((inputs["input_ids"] == int(model.config.image_token_id)).sum())
        meta["image_embeds_rows_match_tokens"] = int(t["image_embeds"].shape[0]) == n_img_tok
    if "hidden_states" in t and "norm_out" in captured:
        last = t["hidden_states"][-1]
        no = captured["norm_out"][0].detach().float().cpu()
        ni = captured["norm_in"][0].detach().float().cpu()
        meta["hidden_states_last"] = ("post_norm" if torch.equal(last, no) else
                                      "pre_norm" if torch.equal(last, ni) else "other")
        t["final_norm_output"] = no
    # positions
    ids_list = inputs["input_ids"][0].tolist()
    grids = inputs["image_grid_thw"].tolist() if "image_grid_thw" in inputs else []
    cfg = model.config
    ref_pos, ref_delta = rope_index_reference(
        ids_list, grids, int(cfg.image_token_id), int(cfg.video_token_id),
        int(cfg.vision_start_token_id), int(getattr(cfg.vision_config, "spatial_merge_size", 2)))
    ref_pos_t = torch.tensor(ref_pos, dtype=torch.int64)
    try:
        reset_rope_cache(model)
        with torch.no_grad():
            pos, delta, how = hf_rope_index(model, dev_inputs)
        pos = pos.detach().cpu().to(torch.int64)
        pos = pos.reshape(pos.shape[0], -1)
        if pos.shape[0] == 4:  # a version that prepends a text-position row
            meta["rope_index_rows"] = 4
            pos = pos[1:]
        delta = torch.as_tensor(delta).detach().cpu().to(torch.int64).reshape(-1)[:1]
        meta["rope_index"] = how
        meta["rope_matches_spec_impl"] = bool(torch.equal(pos, ref_pos_t)) and int(delta[0]) == ref_delta
    except Exception as e:  # noqa: BLE001
        log("get_rope_index failed: %s" % traceback.format_exc())
        meta["rope_index"] = "FAILED (%s); stored the spec implementation" % (e,)
        meta["rope_matches_spec_impl"] = None
        pos, delta = ref_pos_t, torch.tensor([ref_delta], dtype=torch.int64)
    t["position_ids"] = pos
    t["rope_delta"] = delta
    if "position_ids_used" in captured:
        used = captured["position_ids_used"].detach().cpu().to(torch.int64)
        used = used.reshape(-1, used.shape[-1])
        if used.shape[0] == 4:  # some versions prepend a text-position row
            meta["position_ids_used_rows"] = 4
            used = used[1:]
        meta["rope_matches_forward"] = bool(used.shape == pos.shape and torch.equal(used, pos))
    rd = getattr(out, "rope_deltas", None)
    if rd is not None:
        meta["forward_rope_deltas"] = torch.as_tensor(rd).reshape(-1).tolist()
    return t, meta


def eos_ids_for(model_dir, config):
    """eos ids: generation_config.json's eos_token_id if present, else config.eos_token_id."""
    ids = None
    p = os.path.join(model_dir, "generation_config.json") if model_dir else None
    if p and os.path.exists(p):
        ids = read_json(p).get("eos_token_id")
    if ids is None:
        ids = getattr(config, "eos_token_id", None)
        if ids is None:
            ids = getattr(text_config_of(config), "eos_token_id", None)
    if ids is None:
        return []
    return [int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids])]


def greedy(model, inputs, max_new_tokens, top_k, eos_ids, tokenizer=None, device="cpu",
           forward_logits=None):
    """Greedy continuation with generate(); returns the JSON dict of README "greedy"."""
    import torch
    from transformers import GenerationConfig
    pad = eos_ids[0] if eos_ids else 0
    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=int(max_new_tokens),
                          eos_token_id=list(eos_ids) if eos_ids else None, pad_token_id=pad,
                          output_logits=True, return_dict_in_generate=True, use_cache=True,
                          repetition_penalty=1.0)
    dev_inputs = _to(inputs, device)
    L = int(inputs["input_ids"].shape[1])
    meta = {}
    reset_rope_cache(model)
    with torch.no_grad():
        # A user passes the processor's output (which holds mm_token_type_ids) to generate; 5.17
        # places image positions with it (without it, the first GPU run saw text-only positions).
        try:
            out = model.generate(**dev_inputs, generation_config=gc)
            meta["generate"] = "with mm_token_type_ids"
        except Exception as e:  # noqa: BLE001
            log("generate with mm_token_type_ids failed: %r; retrying without it" % (e,))
            reset_rope_cache(model)
            d = {k: v for k, v in dev_inputs.items() if k != "mm_token_type_ids"}
            out = model.generate(**d, generation_config=gc)
            meta["generate"] = "without mm_token_type_ids"
    seq = out.sequences[0, L:].detach().cpu().tolist()
    raw = [l[0].detach().float().cpu() for l in out.logits]
    if len(raw) != len(seq):
        raise RuntimeError("generate returned %d logits for %d tokens" % (len(raw), len(seq)))
    logprobs = []
    min_gap = float("inf")
    argmax_ok = True
    for tok, lg in zip(seq, raw):
        lp = torch.log_softmax(lg, dim=-1)
        top = torch.topk(lp, k=min(int(top_k), lp.numel())) if top_k > 0 else None
        s2 = torch.topk(lg, k=2).values
        min_gap = min(min_gap, float(s2[0] - s2[1]))
        if int(torch.argmax(lg)) != tok:
            argmax_ok = False
        logprobs.append({"token_id": int(tok), "logprob": f32_json(float(lp[tok])),
                         "top": ([{"token_id": int(i), "logprob": f32_json(float(v))}
                                  for v, i in zip(top.values.tolist(), top.indices.tolist())]
                                 if top is not None else [])})
    finish = "stop" if (seq and eos_ids and seq[-1] in eos_ids) else "length"
    res = {"token_ids": [int(x) for x in seq], "finish_reason": finish, "logprobs": logprobs,
           "prompt_len": L, "eos_token_ids": list(eos_ids), "max_new_tokens": int(max_new_tokens),
           "min_top2_logit_gap": f32_json(min_gap) if seq else None}
    if tokenizer is not None:
        res["text"] = tokenizer.decode(seq, skip_special_tokens=True)
        res["text_with_special"] = tokenizer.decode(seq, skip_special_tokens=False)
    checks = {"argmax_of_raw_logits": argmax_ok}
    if forward_logits is not None and raw:
        checks["step0_vs_forward_last_row_max_abs"] = float(
            (raw[0] - forward_logits[-1].float()).abs().max())
    # KV-cache path vs one full forward over prompt + generated tokens
    if len(seq) > 1:
        try:
            full = dict(inputs)
            ext = torch.tensor([seq[:-1]], dtype=torch.int64)
            full["input_ids"] = torch.cat([inputs["input_ids"], ext], dim=1)
            full["attention_mask"] = torch.ones_like(full["input_ids"])
            full["mm_token_type_ids"] = torch.cat(
                [inputs["mm_token_type_ids"], torch.zeros_like(ext)], dim=1)
            reset_rope_cache(model)
            with torch.no_grad():
                try:
                    fo = model(**_to(full, device), use_cache=False, return_dict=True)
                except TypeError:
                    fo = model(**_to({k: v for k, v in full.items() if k != "mm_token_type_ids"}, device),
                               use_cache=False, return_dict=True)
            fl = fo.logits[0, L - 1:].detach().float().cpu()
            checks["cache_vs_full_forward_max_abs"] = float((fl - torch.stack(raw)).abs().max())
        except Exception as e:  # noqa: BLE001
            checks["cache_vs_full_forward_max_abs"] = "error: %r" % (e,)
    res["checks"] = checks
    res["paths"] = meta
    return res


def dump(model, inputs, device="cpu", max_new_tokens=0, top_k=5, eos_ids=(), tokenizer=None):
    """forward_dump + (optional) greedy; returns (tensors, meta, greedy_json_or_None)."""
    tensors, meta = forward_dump(model, inputs, device=device)
    g = None
    if max_new_tokens > 0:
        g = greedy(model, inputs, max_new_tokens, top_k, list(eos_ids), tokenizer, device,
                   forward_logits=tensors["logits"] if device == "cpu" else None)
    return tensors, meta, g


def load_for_dump(model_dir, adapter=None, dtype="float32", device="cpu", attn="eager"):
    """Base model from model_dir, optionally with a PEFT adapter loaded from disk."""
    import torch
    model, info, how = load_pretrained(model_dir, dtype=dtype, device="cpu", attn=attn)
    if adapter:
        from peft import PeftModel
        peft_model = PeftModel.from_pretrained(model, adapter)
        peft_model = peft_model.to({"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype])
        model = unwrap(peft_model)
        how += ",peft(%s)" % type(peft_model).__name__
    model = model.to(device).eval()
    return model, info, how


def format_exc():
    return traceback.format_exc()
