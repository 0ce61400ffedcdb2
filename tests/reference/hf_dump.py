#!/usr/bin/env python3
"""Reference dump of one request through Hugging Face transformers (+PEFT), mirroring the C++
`vlmd dump` tool.

  python3 hf_dump.py --model DIR --request REQ.json --out OUT.safetensors \
      [--adapter DIR] [--dtype float32|bfloat16] [--device cpu|cuda] [--attn eager|sdpa] \
      [--max-new-tokens N] [--top-logprobs K] [--json OUT.json] [--tokenizer tokenizer.json] \
      [--base-dir DIR]

Request JSON (image paths relative to --base-dir, default: the request file's directory):
  {"prompt_ids": [...], "images": ["a.png", ...], "min_pixels": N?, "max_pixels": N?}
     each id equal to config.image_token_id stands for the next image and is expanded to
     t*h*w/4 copies (spec §5.2); or
  {"messages": [{"role": "user", "content": "text" | [{"type": "image", "image": "a.png"},
                                                   {"type": "text", "text": "..."}]}, ...],
   "min_pixels": N?, "max_pixels": N?}
     rendered with the Qwen2-VL chat template (default system prompt, generation prompt) and
     tokenized with <model>/tokenizer.json or --tokenizer (no special tokens added).
min/max pixels: the request's, else <model>/preprocessor_config.json's, else 3136/1003520.

Output safetensors: pixel_values f32 [P,1176] (absent without images), image_grid_thw i64 [N,3],
input_ids i64 [L], position_ids i64 [3,L] (model's get_rope_index), rope_delta i64 [1],
logits f32 [L,V], image_embeds f32 [tokens,H], hidden_states f32 [layers+1,L,H] (HF's
output_hidden_states), final_norm_output f32 [L,H].
--json: {"greedy": {...} (when --max-new-tokens > 0), "meta": {...}}.
Float32 on CPU uses eager attention and deterministic algorithms.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--request", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"])
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--max-new-tokens", type=int, default=0)
    ap.add_argument("--top-logprobs", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--tokenizer")
    ap.add_argument("--base-dir")
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args(argv)
    device = a.device or ("cpu" if a.dtype == "float32" else "cuda")
    common.setup_determinism(threads=a.threads)
    req = common.read_json(a.request)
    base_dir = a.base_dir or os.path.dirname(os.path.abspath(a.request))
    model, load_info, how = common.load_for_dump(a.model, a.adapter, a.dtype, device, a.attn)
    tok, tok_path = common.load_tokenizer(a.model, a.tokenizer)
    inputs, info = common.build_inputs(req, model.config, base_dir=base_dir, model_dir=a.model,
                                       tokenizer=tok)
    eos = common.eos_ids_for(a.model, model.config)
    tensors, meta, g = common.dump(model, inputs, device=device, max_new_tokens=a.max_new_tokens,
                                   top_k=a.top_logprobs, eos_ids=eos, tokenizer=tok)
    common.save_tensors(a.out, tensors)
    meta.update(load=how, loading_info=load_info, tokenizer=tok_path, request_info=info,
                dtype=a.dtype, device=device, attn=a.attn, versions=common.versions())
    if a.json:
        common.write_json(a.json, {"greedy": g, "meta": meta})
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    print(json.dumps({"out": a.out, "shapes": shapes, "greedy_tokens": g["token_ids"] if g else None,
                      "finish_reason": g["finish_reason"] if g else None,
                      "rope_index": meta.get("rope_index"),
                      "rope_matches_spec_impl": meta.get("rope_matches_spec_impl"),
                      "rope_matches_forward": meta.get("rope_matches_forward")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
