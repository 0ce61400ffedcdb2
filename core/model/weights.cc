#include "core/model/weights.h"

#include <cstring>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/logging.h"

namespace vlmd {
namespace {

// Looks tensors up by canonical name, checks shapes and converts them.
class WeightReader {
 public:
  WeightReader(const Checkpoint& ckpt, at::ScalarType dtype, at::Device device)
      : ckpt_(ckpt), dtype_(dtype), device_(device) {
    for (const std::string& name : ckpt.Names()) by_canonical_[CanonicalTensorName(name)] = name;
  }

  // The tensor `name` reshaped to `shape` (the element count must match when `reshape_ok`,
  // else the shape must be exact). Records an error and returns undefined on failure.
  at::Tensor Get(const std::string& name, std::vector<int64_t> shape, bool reshape_ok = false) {
    auto it = by_canonical_.find(name);
    if (it == by_canonical_.end()) {
      Fail(absl::StrCat("missing tensor '", name, "'"));
      return at::Tensor();
    }
    used_.insert(name);
    const TensorView* view = ckpt_.Find(it->second);
    int64_t want = 1;
    for (int64_t d : shape) want *= d;
    bool ok = reshape_ok ? view->numel() == want : view->shape == shape;
    if (!ok) {
      Fail(absl::StrCat("tensor '", it->second, "' has shape [", absl::StrJoin(view->shape, ","),
                        "], expected [", absl::StrJoin(shape, ","), "]"));
      return at::Tensor();
    }
    return ToTensor(*view, dtype_, device_).reshape(shape);
  }

  bool Has(const std::string& name) const { return by_canonical_.count(name) > 0; }

  LinearWeights Linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights l;
    l.name = name;
    l.weight = Get(name + ".weight", {out, in});
    if (bias) l.bias = Get(name + ".bias", {out});
    return l;
  }

  NormWeights Norm(const std::string& name, int64_t dim, bool bias) {
    NormWeights n;
    n.weight = Get(name + ".weight", {dim});
    if (bias) n.bias = Get(name + ".bias", {dim});
    return n;
  }

  Status Finish() {
    for (const auto& [canonical, original] : by_canonical_) {
      if (!used_.count(canonical)) VLMD_LOG(Warning) << "unused tensor in checkpoint: " << original;
    }
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", ckpt_.path(), ": ", absl::StrJoin(errors_, "; ")));
  }

 private:
  void Fail(std::string message) {
    if (errors_.size() < 5) errors_.push_back(std::move(message));
  }

  const Checkpoint& ckpt_;
  at::ScalarType dtype_;
  at::Device device_;
  std::map<std::string, std::string> by_canonical_;
  std::set<std::string> used_;
  std::vector<std::string> errors_;
};

VisionWeights ReadVision(WeightReader& r, const VisionConfig& v) {
  VisionWeights w;
  const int64_t e = v.embed_dim, m = v.mlp_hidden(), merged = e * v.spatial_merge_size *
                                                               v.spatial_merge_size;
  w.patch_embed.name = "visual.patch_embed.proj";
  w.patch_embed.weight = r.Get("visual.patch_embed.proj.weight", {e, v.patch_dim()}, true);
  for (int i = 0; i < v.depth; ++i) {
    std::string p = absl::StrCat("visual.blocks.", i, ".");
    VisionBlockWeights b;
    b.norm1 = r.Norm(p + "norm1", e, true);
    b.norm2 = r.Norm(p + "norm2", e, true);
    b.qkv = r.Linear(p + "attn.qkv", 3 * e, e, true);
    b.proj = r.Linear(p + "attn.proj", e, e, true);
    b.fc1 = r.Linear(p + "mlp.fc1", m, e, true);
    b.fc2 = r.Linear(p + "mlp.fc2", e, m, true);
    w.blocks.push_back(std::move(b));
  }
  w.merger_ln = r.Norm("visual.merger.ln_q", e, true);
  w.merger_fc1 = r.Linear("visual.merger.mlp.0", merged, merged, true);
  w.merger_fc2 = r.Linear("visual.merger.mlp.2", v.hidden_size, merged, true);
  return w;
}

LanguageWeights ReadLanguage(WeightReader& r, const TextConfig& t) {
  LanguageWeights w;
  const int64_t h = t.hidden_size, i = t.intermediate_size, hd = t.head_dim();
  const int64_t q = t.num_attention_heads * hd, kv = t.num_key_value_heads * hd;
  w.embed_tokens = r.Get("model.embed_tokens.weight", {t.vocab_size, h});
  for (int l = 0; l < t.num_hidden_layers; ++l) {
    std::string p = absl::StrCat("model.layers.", l, ".");
    DecoderLayerWeights d;
    d.input_norm = r.Norm(p + "input_layernorm", h, false);
    d.post_norm = r.Norm(p + "post_attention_layernorm", h, false);
    d.q = r.Linear(p + "self_attn.q_proj", q, h, true);
    d.k = r.Linear(p + "self_attn.k_proj", kv, h, true);
    d.v = r.Linear(p + "self_attn.v_proj", kv, h, true);
    d.o = r.Linear(p + "self_attn.o_proj", h, q, false);
    d.gate = r.Linear(p + "mlp.gate_proj", i, h, false);
    d.up = r.Linear(p + "mlp.up_proj", i, h, false);
    d.down = r.Linear(p + "mlp.down_proj", h, i, false);
    w.layers.push_back(std::move(d));
  }
  w.final_norm = r.Norm("model.norm", h, false);
  w.lm_head.name = "lm_head";
  if (t.tie_word_embeddings) {
    w.lm_head.weight = w.embed_tokens;
    if (r.Has("lm_head.weight")) r.Get("lm_head.weight", {t.vocab_size, h});  // mark as used
  } else {
    w.lm_head.weight = r.Get("lm_head.weight", {t.vocab_size, h});
  }
  return w;
}

}  // namespace

std::string CanonicalTensorName(const std::string& name) {
  std::string n = name;
  if (absl::StartsWith(n, "base_model.model.")) n = n.substr(strlen("base_model.model."));
  if (absl::StartsWith(n, "model.language_model.")) {
    return "model." + n.substr(strlen("model.language_model."));
  }
  if (absl::StartsWith(n, "model.visual.")) return n.substr(strlen("model."));
  return n;
}

at::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kF64: return at::kDouble;
    case DType::kF32: return at::kFloat;
    case DType::kF16: return at::kHalf;
    case DType::kBF16: return at::kBFloat16;
    case DType::kI64: return at::kLong;
    case DType::kI32: return at::kInt;
    case DType::kI16: return at::kShort;
    case DType::kI8: return at::kChar;
    case DType::kU8: return at::kByte;
    case DType::kBool: return at::kBool;
  }
  return at::kFloat;
}

at::Tensor ToTensor(const TensorView& view, at::ScalarType dtype, at::Device device) {
  at::Tensor src = at::from_blob(const_cast<void*>(view.data), view.shape,
                                 at::TensorOptions().dtype(ToScalarType(view.dtype)));
  // from_blob does not own the mapped bytes: always copy (and convert) into owned memory.
  return src.to(at::TensorOptions().dtype(dtype).device(device), /*non_blocking=*/false,
                /*copy=*/true);
}

StatusOr<ModelWeights> LoadModelWeights(const Checkpoint& checkpoint, const ModelConfig& config,
                                        at::ScalarType dtype, at::Device device) {
  WeightReader reader(checkpoint, dtype, device);
  ModelWeights w;
  w.vision = ReadVision(reader, config.vision);
  w.language = ReadLanguage(reader, config.text);
  RETURN_IF_ERROR(reader.Finish());
  return w;
}

namespace {
template <typename W, typename L>
std::map<std::string, L*> CollectLinears(W* w) {
  std::map<std::string, L*> out;
  auto add = [&](L& l) { out[l.name] = &l; };
  add(w->vision.patch_embed);
  for (auto& b : w->vision.blocks) {
    for (L* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) add(*l);
  }
  add(w->vision.merger_fc1);
  add(w->vision.merger_fc2);
  for (auto& d : w->language.layers) {
    for (L* l : {&d.q, &d.k, &d.v, &d.o, &d.gate, &d.up, &d.down}) add(*l);
  }
  add(w->language.lm_head);
  return out;
}
}  // namespace

std::map<std::string, LinearWeights*> LinearsByName(ModelWeights* weights) {
  return CollectLinears<ModelWeights, LinearWeights>(weights);
}

std::map<std::string, const LinearWeights*> LinearsByName(const ModelWeights& weights) {
  return CollectLinears<const ModelWeights, const LinearWeights>(&weights);
}

std::vector<std::pair<std::string, at::Tensor>> NamedTensors(const ModelWeights& w,
                                                             const ModelConfig& config) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto linear = [&](const LinearWeights& l) {
    out.emplace_back(l.name + ".weight", l.weight);
    if (l.bias.defined()) out.emplace_back(l.name + ".bias", l.bias);
  };
  auto norm = [&](const std::string& name, const NormWeights& n) {
    out.emplace_back(name + ".weight", n.weight);
    if (n.bias.defined()) out.emplace_back(name + ".bias", n.bias);
  };
  const VisionConfig& v = config.vision;
  out.emplace_back("visual.patch_embed.proj.weight",
                   w.vision.patch_embed.weight.reshape(
                       {v.embed_dim, v.in_channels, v.temporal_patch_size, v.patch_size,
                        v.patch_size}));
  for (size_t i = 0; i < w.vision.blocks.size(); ++i) {
    const auto& b = w.vision.blocks[i];
    std::string p = absl::StrCat("visual.blocks.", i, ".");
    norm(p + "norm1", b.norm1);
    norm(p + "norm2", b.norm2);
    for (const LinearWeights* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) linear(*l);
  }
  norm("visual.merger.ln_q", w.vision.merger_ln);
  linear(w.vision.merger_fc1);
  linear(w.vision.merger_fc2);
  out.emplace_back("model.embed_tokens.weight", w.language.embed_tokens);
  for (size_t i = 0; i < w.language.layers.size(); ++i) {
    const auto& d = w.language.layers[i];
    std::string p = absl::StrCat("model.layers.", i, ".");
    norm(p + "input_layernorm", d.input_norm);
    norm(p + "post_attention_layernorm", d.post_norm);
    for (const LinearWeights* l : {&d.q, &d.k, &d.v, &d.o, &d.gate, &d.up, &d.down}) linear(*l);
  }
  norm("model.norm", w.language.final_norm);
  if (!config.text.tie_word_embeddings) linear(w.language.lm_head);
  return out;
}

}  // namespace vlmd
