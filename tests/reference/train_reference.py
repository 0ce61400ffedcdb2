#!/usr/bin/env python3
"""LoRA fine-tuning reference for vlmd's trainer parity test (tests/parity/train_parity_test.cc).

Runs on the GPU machine's CPU in float32 with transformers 5.17 + PEFT:

  python3 tests/reference/train_reference.py --fixtures tests/fixtures --out $OUT/train

Writes under --out (committed as tests/fixtures/train/):
  train.jsonl, val.jsonl          the data set (images referenced from ../images/)
  init_adapter/                   PEFT adapter both sides start from (A uniform, B small normal)
  final_adapter/                  the adapter after training
  reference.json                  the run: hyperparameters, per-step loss / acc / grad_norm /
                                  learning_rate, eval_loss / eval_acc, and per-sample input_ids and
                                  labels (to check vlmd's template + tokenization first)

The loop has the semantics of transformers' Trainer as vlmd implements them (spec/swift.md):
labels only on the assistant reply and its <|im_end|>; per optimizer step the loss is the summed
cross-entropy over all label tokens of the accumulated micro-batches divided by their count;
AdamW (betas 0.9/0.95, eps 1e-8, decoupled weight decay 0.1, torch's single-tensor form);
cosine schedule with warmup = ceil(ratio * steps), logged learning rate = the schedule after the
step; clip_grad_norm_ 1.0 (grad_norm = the norm before clipping); fixed data order; dropout 0.
Micro-batches are padded on the right and masked, as the HF collator does; vlmd packs them.
"""

import argparse
import json
import math
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

LLM_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QUERY = "<image>Using LaTeX to perform OCR on the image."
RESPONSES = [r"\frac { a } { b }", r"x ^ { 2 } + y ^ { 2 }", r"\sum _ { i = 1 } ^ { n } i",
             r"\int _ 0 ^ 1 f ( x ) d x", r"\alpha + \beta = \gamma", r"e ^ { i \pi } = - 1",
             r"\sqrt { x + 1 }", r"a _ { n + 1 } = 2 a _ { n }", r"\lim _ { x \to 0 } x",
             r"( a + b ) ^ { 2 }"]
IMAGES = ["crop_112x56.png", "formula_120x90_la.png", "formula_176x53_p.png",
          "formula_347x76_l.png", "formula_769x76_rgb.png"]
HP = dict(lora_rank=4, lora_alpha=8, learning_rate=2e-3, warmup_ratio=0.2, weight_decay=0.1,
          adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, max_grad_norm=1.0, batch_size=2,
          gradient_accumulation_steps=2, max_steps=6, max_pixels=50176, min_pixels=3136, seed=7)


def write_data(out):
    rows = [{"query": QUERY, "response": RESPONSES[i], "images": ["../images/" + IMAGES[i % len(IMAGES)]]}
            for i in range(len(RESPONSES))]
    with open(os.path.join(out, "train.jsonl"), "w") as f:
        for r in rows[:8]:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(out, "val.jsonl"), "w") as f:
        for r in rows[8:]:
            f.write(json.dumps(r) + "\n")
    return rows[:8], rows[8:]


def encode_sample(row, tok, fixtures):
    """SWIFT's template by segments: (ids, labels, image paths)."""
    im_start, im_end = common.TOK_IM_START, common.TOK_IM_END
    user = common.TOK_VISION_START + common.TOK_IMAGE_PAD + common.TOK_VISION_END + QUERY.replace("<image>", "")
    pieces = [(im_start + "system\n" + common.DEFAULT_SYSTEM_PROMPT + im_end + "\n" +
               im_start + "user\n" + user + im_end + "\n" + im_start + "assistant\n", False),
              (row["response"] + im_end, True), ("\n", False)]
    ids, labels = [], []
    for text, trainable in pieces:
        part = tok.encode(text, add_special_tokens=False).ids
        ids += part
        labels += part if trainable else [-100] * len(part)
    paths = [os.path.normpath(os.path.join(fixtures, "train", p)) for p in row["images"]]
    return ids, labels, paths


def prepare(rows, tok, config, fixtures):
    import torch
    out = []
    for row in rows:
        ids, labels, paths = encode_sample(row, tok, fixtures)
        pv, thw, _ = common.preprocess_images(paths, HP["min_pixels"], HP["max_pixels"])
        counts = [int(t * h * w) // 4 for t, h, w in thw.tolist()]
        ids_x = common.expand_image_tokens(ids, int(config.image_token_id), counts)
        lab_x, k = [], 0
        for t, l in zip(ids, labels):
            lab_x += [-100] * counts[k] if t == int(config.image_token_id) else [l]
            k += t == int(config.image_token_id)
        out.append(dict(ids=ids_x, labels=lab_x, pixel_values=pv, grid=thw))
    return out


def collate(batch, image_token_id):
    import torch
    L = max(len(b["ids"]) for b in batch)
    ids = torch.zeros(len(batch), L, dtype=torch.int64)
    labels = torch.full((len(batch), L), -100, dtype=torch.int64)
    mask = torch.zeros(len(batch), L, dtype=torch.int64)
    for i, b in enumerate(batch):
        n = len(b["ids"])
        ids[i, :n] = torch.tensor(b["ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        mask[i, :n] = 1
    return dict(input_ids=ids, attention_mask=mask, labels=labels,
                pixel_values=torch.cat([b["pixel_values"] for b in batch]),
                image_grid_thw=torch.cat([b["grid"] for b in batch]),
                mm_token_type_ids=(ids == image_token_id).to(torch.int64) * mask)


def loss_sum(model, inputs):
    import torch
    labels = inputs.pop("labels")
    out = model(**inputs, use_cache=False, return_dict=True)
    logits = out.logits[:, :-1].float()
    target = labels[:, 1:]
    valid = target != -100
    ce = torch.nn.functional.cross_entropy(logits[valid], target[valid], reduction="sum")
    correct = int((logits[valid].argmax(-1) == target[valid]).sum())
    return ce, int(valid.sum()), correct


def init_adapter(model, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            elif "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def lr_lambda(step, total, warmup):
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def train(model, data, val, image_token_id, params):
    import torch
    opt = torch.optim.AdamW(params, lr=HP["learning_rate"], betas=(HP["adam_beta1"], HP["adam_beta2"]),
                            eps=HP["adam_epsilon"], weight_decay=HP["weight_decay"], foreach=False)
    total = HP["max_steps"]
    warmup = math.ceil(HP["warmup_ratio"] * total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, total, warmup))
    bs, acc_steps = HP["batch_size"], HP["gradient_accumulation_steps"]
    batches = [data[i:i + bs] for i in range(0, len(data), bs)]
    steps, cursor = [], 0
    for step in range(total):
        group = []
        for _ in range(acc_steps):
            group.append(batches[cursor % len(batches)])
            cursor += 1
            if cursor % len(batches) == 0:
                break  # an epoch ends the accumulation group
        n = sum(sum(1 for l in b["labels"][1:] if l != -100) for mb in group for b in mb)
        tot, correct = 0.0, 0
        for mb in group:
            ce, cnt, c = loss_sum(model, collate(mb, image_token_id))
            (ce / n).backward()
            tot += float(ce)
            correct += c
        gn = float(torch.nn.utils.clip_grad_norm_(params, HP["max_grad_norm"]))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        steps.append(dict(step=step + 1, loss=tot / n, acc=correct / n, grad_norm=gn,
                          learning_rate=sched.get_last_lr()[0], tokens=n))
        common.say("step %d loss %.6f acc %.3f grad_norm %.6f lr %.6g" % (
            step + 1, tot / n, correct / n, gn, sched.get_last_lr()[0]))
    return steps


def evaluate(model, val, image_token_id):
    import torch
    losses, correct, tokens = [], 0, 0
    with torch.no_grad():
        for b in val:  # eval batch size 1: mean over samples of each sample's token mean
            ce, cnt, c = loss_sum(model, collate([b], image_token_id))
            losses.append(float(ce) / cnt)
            correct += c
            tokens += cnt
    return sum(losses) / len(losses), correct / tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default="tests/fixtures")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import torch
    from peft import LoraConfig, get_peft_model
    common.setup_determinism(threads=8, seed=0)
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    model_dir = os.path.join(args.fixtures, "models", "gqa_tied")
    model, _, _ = common.load_pretrained(model_dir, dtype="float32")
    tok, _ = common.load_tokenizer(model_dir)
    train_rows, val_rows = write_data(out)
    # Images are referenced relative to the data file: <fixtures>/train/../images/.
    data = prepare(train_rows, tok, model.config, os.path.join(out, ".."))
    val = prepare(val_rows, tok, model.config, os.path.join(out, ".."))
    cfg = LoraConfig(r=HP["lora_rank"], lora_alpha=HP["lora_alpha"], lora_dropout=0.0,
                     target_modules=LLM_TARGETS, init_lora_weights=True)
    model = get_peft_model(model, cfg)
    init_adapter(model, HP["seed"])
    model.save_pretrained(os.path.join(out, "init_adapter"))
    model.train()
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    image_token_id = int(model.config.image_token_id)
    steps = train(model, data, val, image_token_id, params)
    model.eval()
    eval_loss, eval_acc = evaluate(model, val, image_token_id)
    model.save_pretrained(os.path.join(out, "final_adapter"))
    for d in ("init_adapter", "final_adapter"):
        readme = os.path.join(out, d, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    ref = dict(hyperparameters=HP, steps=steps, eval_loss=eval_loss, eval_acc=eval_acc,
               samples=[dict(ids=d["ids"], labels=d["labels"]) for d in data + val],
               versions=common.versions())
    common.write_json(os.path.join(out, "reference.json"), ref, indent=1)
    common.say("eval_loss %.6f eval_acc %.4f" % (eval_loss, eval_acc))


if __name__ == "__main__":
    main()
