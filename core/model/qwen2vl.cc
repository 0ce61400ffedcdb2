#include "core/model/qwen2vl.h"

#include "absl/strings/str_cat.h"
#include "core/io/safetensors.h"
#include "core/model/torch_compat.h"

namespace vlmd {
namespace {

// 1 / base^(arange(0, dim, 2) / dim) in float32, as transformers computes rotary frequencies.
at::Tensor InverseFrequencies(int64_t dim, double base) {
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  return at::reciprocal(at::pow(base, exponent));
}

at::Tensor RotateHalf(const at::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor RmsNorm(const at::Tensor& x, const NormWeights& w, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return w.weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
}

at::Tensor LayerNorm(const at::Tensor& x, const NormWeights& w) {
  return at::layer_norm(x, {x.size(-1)}, w.weight, w.bias, 1e-6);
}

at::Tensor QuickGelu(const at::Tensor& x) { return x * at::sigmoid(x * 1.702); }

// Row and column of every patch, in the processor's 2x2-window order (spec §4 step 2).
at::Tensor VisionPositionIds(const std::vector<GridThw>& grids, int64_t merge) {
  std::vector<at::Tensor> parts;
  for (const GridThw& g : grids) {
    const int64_t h = g[1], w = g[2];
    at::Tensor hpos = at::arange(h, at::kLong).unsqueeze(1).expand({h, w});
    at::Tensor wpos = at::arange(w, at::kLong).unsqueeze(0).expand({h, w});
    auto windowed = [&](const at::Tensor& p) {
      return p.reshape({h / merge, merge, w / merge, merge}).permute({0, 2, 1, 3}).flatten();
    };
    at::Tensor hw = at::stack({windowed(hpos), windowed(wpos)}, -1);  // [h*w, 2]
    parts.push_back(hw.repeat({g[0], 1}));
  }
  return at::cat(parts, 0);
}

}  // namespace

StatusOr<at::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device ", name, " requested but this build/machine has no CUDA"));
    }
    int index = 0;
    if (name.size() > 5 && name[4] == ':') index = std::atoi(name.c_str() + 5);
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device '", name, "' (cpu, cuda, cuda:N)"));
}

StatusOr<at::ScalarType> ParseDtype(const std::string& name, const at::Device& device) {
  if (name == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16") return at::kHalf;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "' (float32, bfloat16, float16, auto)"));
}

KvCache::KvCache(const TextConfig& config, int64_t capacity, at::ScalarType dtype,
                 at::Device device)
    : capacity_(capacity) {
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(at::empty({capacity, config.num_key_value_heads, config.head_dim()}, options));
    values_.push_back(at::empty_like(keys_.back()));
  }
}

KvCache::KvCache(std::vector<at::Tensor> keys, std::vector<at::Tensor> values)
    : capacity_(keys.empty() ? 0 : keys[0].size(0)), keys_(std::move(keys)),
      values_(std::move(values)) {}

SlabCache::SlabCache(const TextConfig& config, int64_t slots, int64_t capacity,
                     at::ScalarType dtype, at::Device device)
    : slots_(slots), capacity_(capacity) {
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(at::zeros({slots, capacity, config.num_key_value_heads, config.head_dim()},
                              options));
    values_.push_back(at::zeros_like(keys_.back()));
  }
}

KvCache SlabCache::Slot(int64_t slot) {
  std::vector<at::Tensor> k, v;
  for (size_t l = 0; l < keys_.size(); ++l) {
    k.push_back(keys_[l][slot]);
    v.push_back(values_[l][slot]);
  }
  return KvCache(std::move(k), std::move(v));
}

void SlabCache::MoveSlot(int64_t from, int64_t to, int64_t length) {
  if (from == to || length <= 0) return;
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l][to].narrow(0, 0, length).copy_(keys_[l][from].narrow(0, 0, length));
    values_[l][to].narrow(0, 0, length).copy_(values_[l][from].narrow(0, 0, length));
  }
}

int64_t KvCache::BytesPerToken(const TextConfig& config, at::ScalarType dtype) {
  return 2LL * config.num_hidden_layers * config.num_key_value_heads * config.head_dim() *
         static_cast<int64_t>(c10::elementSize(dtype));
}

StatusOr<std::shared_ptr<const Qwen2VL>> Qwen2VL::Load(const std::string& dir,
                                                       const ModelOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::Load(dir));
  ASSIGN_OR_RETURN(at::Device device, ParseDevice(options.device));
  ASSIGN_OR_RETURN(at::ScalarType dtype, ParseDtype(options.dtype, device));
  ASSIGN_OR_RETURN(auto checkpoint, Checkpoint::Open(dir));
  ASSIGN_OR_RETURN(ModelWeights weights, LoadModelWeights(*checkpoint, config, dtype, device));
  return std::make_shared<const Qwen2VL>(std::move(config), std::move(weights), dtype, device,
                                         options.fused_attention);
}

Qwen2VL::Qwen2VL(ModelConfig config, ModelWeights weights, at::ScalarType dtype,
                 at::Device device, bool fused_attention)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      dtype_(dtype),
      device_(device),
      fused_attention_(fused_attention && device.is_cuda()) {
  const TextConfig& t = config_.text;
  text_inv_freq_ = InverseFrequencies(t.head_dim(), t.rope_theta).to(device_);
  vision_inv_freq_ = InverseFrequencies(config_.vision.head_dim() / 2, 10000.0).to(device_);
  std::vector<int64_t> streams;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < t.mrope_section[s]; ++i) streams.push_back(s);
  }
  stream_of_freq_ = at::tensor(streams, at::kLong).to(device_);
}

at::Tensor Qwen2VL::EncodeImages(const at::Tensor& pixel_values, const std::vector<GridThw>& grids,
                                 const std::vector<const LoraAdapter*>& adapters,
                                 double lora_dropout, bool training) const {
  const VisionConfig& v = config_.vision;
  const int64_t m2 = v.spatial_merge_size * v.spatial_merge_size;
  LoraContext patch_ctx, merged_ctx;
  if (!adapters.empty()) {
    std::vector<int64_t> patches, merged;
    for (const GridThw& g : grids) {
      patches.push_back(g[0] * g[1] * g[2]);
      merged.push_back(patches.back() / m2);
    }
    patch_ctx = BuildLoraContext(adapters, patches, device_, lora_dropout, training);
    merged_ctx = BuildLoraContext(adapters, merged, device_, lora_dropout, training);
  }
  const LoraContext* lora = patch_ctx.empty() ? nullptr : &patch_ctx;
  const LoraContext* merged_lora = merged_ctx.empty() ? nullptr : &merged_ctx;
  at::Tensor x = pixel_values.to(device_, dtype_);
  x = ApplyLinear(x, weights_.vision.patch_embed, lora);
  at::Tensor pos = VisionPositionIds(grids, v.spatial_merge_size).to(device_);
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * vision_inv_freq_;  // [P, 2, hd/4]
  freqs = freqs.flatten(1);                                              // [P, hd/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  std::pair<at::Tensor, at::Tensor> rotary{emb.cos(), emb.sin()};
  std::vector<int64_t> segments;
  for (const GridThw& g : grids) {
    for (int64_t t = 0; t < g[0]; ++t) segments.push_back(g[1] * g[2]);
  }
  for (const VisionBlockWeights& block : weights_.vision.blocks) {
    x = VisionBlock(block, x, rotary, segments, lora);
  }
  at::Tensor y = LayerNorm(x, weights_.vision.merger_ln).reshape({-1, v.embed_dim * m2});
  y = at::gelu(ApplyLinear(y, weights_.vision.merger_fc1, merged_lora));
  return ApplyLinear(y, weights_.vision.merger_fc2, merged_lora);
}

at::Tensor Qwen2VL::EmbedWithImages(const at::Tensor& ids, const at::Tensor& image_embeds) const {
  if (!image_embeds.defined() || image_embeds.size(0) == 0) return Embed(ids);
  at::Tensor host = ids.to(at::kCPU, at::kLong).contiguous();
  std::vector<int64_t> rows;
  const int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i) {
    if (p[i] == config_.image_token_id) rows.push_back(i);
  }
  return EmbedWithImageRows(ids, image_embeds, rows);
}

at::Tensor Qwen2VL::EmbedWithImageRows(const at::Tensor& ids, const at::Tensor& image_embeds,
                                       const std::vector<int64_t>& rows) const {
  at::Tensor embeds = Embed(ids);
  const int64_t features = image_embeds.defined() ? image_embeds.size(0) : 0;
  if (static_cast<int64_t>(rows.size()) != features) {
    throw std::runtime_error("the prompt has " + std::to_string(rows.size()) +
                             " image placeholder tokens but the images give " +
                             std::to_string(features) + " features");
  }
  if (features == 0) return embeds;
  at::Tensor index = at::tensor(rows, at::kLong).to(device_);
  return embeds.index_copy(0, index, image_embeds.to(embeds.scalar_type()));
}

at::Tensor Qwen2VL::VisionBlock(const VisionBlockWeights& w, const at::Tensor& x,
                                const std::pair<at::Tensor, at::Tensor>& rotary,
                                const std::vector<int64_t>& segments,
                                const LoraContext* lora) const {
  const int64_t heads = config_.vision.num_heads, hd = config_.vision.head_dim();
  const int64_t n = x.size(0);
  at::Tensor qkv = ApplyLinear(LayerNorm(x, w.norm1), w.qkv, lora)
                       .reshape({n, 3, heads, hd})
                       .permute({1, 0, 2, 3});
  at::Tensor cos = rotary.first.unsqueeze(1), sin = rotary.second.unsqueeze(1);
  auto rope = [&](const at::Tensor& t) {
    at::Tensor f = t.to(at::kFloat);
    return (f * cos + RotateHalf(f) * sin).to(dtype_);
  };
  at::Tensor q = rope(qkv[0]), k = rope(qkv[1]), v = qkv[2];
  std::vector<at::Tensor> outs;
  int64_t begin = 0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t len : segments) {
    auto seg = [&](const at::Tensor& t) { return t.narrow(0, begin, len).transpose(0, 1); };
    at::Tensor o = compat::Attention(seg(q), seg(k), seg(v), at::Tensor(), scale,
                                     /*is_causal=*/false, fused_attention_);
    outs.push_back(o.transpose(0, 1).reshape({len, heads * hd}));
    begin += len;
  }
  at::Tensor attn = outs.size() == 1 ? outs[0] : at::cat(outs, 0);
  at::Tensor h = x + ApplyLinear(attn, w.proj, lora);
  at::Tensor mlp = ApplyLinear(QuickGelu(ApplyLinear(LayerNorm(h, w.norm2), w.fc1, lora)), w.fc2,
                               lora);
  return h + mlp;
}

at::Tensor Qwen2VL::Embed(const at::Tensor& ids) const {
  return at::embedding(weights_.language.embed_tokens, ids.to(device_));
}

std::pair<at::Tensor, at::Tensor> Qwen2VL::RotaryTables(const at::Tensor& positions) const {
  at::Tensor pos = positions.to(device_).to(at::kFloat);                  // [3, T]
  at::Tensor freqs = pos.unsqueeze(-1) * text_inv_freq_;                  // [3, T, hd/2]
  at::Tensor index = stream_of_freq_.view({1, 1, -1}).expand({1, pos.size(1), -1});
  at::Tensor selected = freqs.gather(0, index).squeeze(0);                // [T, hd/2]
  at::Tensor emb = at::cat({selected, selected}, -1);
  return {emb.cos().to(dtype_), emb.sin().to(dtype_)};
}

at::Tensor Qwen2VL::Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const std::vector<SeqSpan>& seqs, int layer) const {
  const TextConfig& t = config_.text;
  const int64_t groups = t.num_attention_heads / t.num_key_value_heads, hd = t.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto expand_kv = [&](const at::Tensor& x) {  // [L, kv, hd] -> [heads, L, hd] (repeat_kv)
    at::Tensor h = x.transpose(0, 1);
    if (groups == 1) return h;
    int64_t kv = h.size(0), len = h.size(1);
    return h.unsqueeze(1).expand({kv, groups, len, hd}).reshape({kv * groups, len, hd});
  };
  std::vector<at::Tensor> outs;
  for (const SeqSpan& s : seqs) {
    at::Tensor ks = k.narrow(0, s.begin, s.length), vs = v.narrow(0, s.begin, s.length);
    if (s.cache != nullptr) {
      s.cache->keys(layer).narrow(0, s.past, s.length).copy_(ks);
      s.cache->values(layer).narrow(0, s.past, s.length).copy_(vs);
      ks = s.cache->keys(layer).narrow(0, 0, s.past + s.length);
      vs = s.cache->values(layer).narrow(0, 0, s.past + s.length);
    }
    at::Tensor qs = q.narrow(0, s.begin, s.length).transpose(0, 1);
    at::Tensor o = compat::Attention(qs, expand_kv(ks), expand_kv(vs), at::Tensor(), scale,
                                     /*is_causal=*/s.length > 1, fused_attention_);
    outs.push_back(o.transpose(0, 1).reshape({s.length, -1}));
  }
  return outs.size() == 1 ? outs[0] : at::cat(outs, 0);
}

at::Tensor Qwen2VL::DecoderLayer(int layer, const at::Tensor& hidden,
                                 const std::pair<at::Tensor, at::Tensor>& rotary,
                                 const std::vector<SeqSpan>& seqs,
                                 const LoraContext* lora) const {
  const TextConfig& t = config_.text;
  const DecoderLayerWeights& w = weights_.language.layers[layer];
  const int64_t n = hidden.size(0), hd = t.head_dim();
  at::Tensor x = RmsNorm(hidden, w.input_norm, t.rms_norm_eps);
  at::Tensor q = ApplyLinear(x, w.q, lora).view({n, t.num_attention_heads, hd});
  at::Tensor k = ApplyLinear(x, w.k, lora).view({n, t.num_key_value_heads, hd});
  at::Tensor v = ApplyLinear(x, w.v, lora).view({n, t.num_key_value_heads, hd});
  at::Tensor cos = rotary.first.unsqueeze(1), sin = rotary.second.unsqueeze(1);
  q = q * cos + RotateHalf(q) * sin;
  k = k * cos + RotateHalf(k) * sin;
  at::Tensor attn = Attention(q, k, v, seqs, layer);
  at::Tensor h = hidden + ApplyLinear(attn, w.o, lora);
  at::Tensor y = RmsNorm(h, w.post_norm, t.rms_norm_eps);
  at::Tensor mlp = at::silu(ApplyLinear(y, w.gate, lora)) * ApplyLinear(y, w.up, lora);
  return h + ApplyLinear(mlp, w.down, lora);
}

at::Tensor Qwen2VL::Decode(const at::Tensor& hidden, const at::Tensor& positions,
                           const std::vector<SeqSpan>& seqs, const LoraContext* lora) const {
  auto rotary = RotaryTables(positions);
  at::Tensor h = hidden;
  for (int l = 0; l < config_.text.num_hidden_layers; ++l) {
    h = DecoderLayer(l, h, rotary, seqs, lora);
  }
  return FinalNorm(h);
}

at::Tensor Qwen2VL::DecodeSlab(const at::Tensor& hidden, const at::Tensor& positions,
                               const at::Tensor& lengths, SlabCache* cache,
                               int64_t window) const {
  const TextConfig& t = config_.text;
  const int64_t b = hidden.size(0), hd = t.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto rotary = RotaryTables(positions);
  at::Tensor cos = rotary.first.unsqueeze(1), sin = rotary.second.unsqueeze(1);
  at::Tensor rows = at::arange(b, lengths.options());
  at::Tensor mask = (at::arange(window, lengths.options()).unsqueeze(0) <= lengths.unsqueeze(1))
                        .view({b, 1, 1, window});
  at::Tensor h = hidden;
  for (int l = 0; l < t.num_hidden_layers; ++l) {
    const DecoderLayerWeights& w = weights_.language.layers[l];
    at::Tensor x = RmsNorm(h, w.input_norm, t.rms_norm_eps);
    at::Tensor q = ApplyLinear(x, w.q, nullptr).view({b, t.num_attention_heads, hd});
    at::Tensor k = ApplyLinear(x, w.k, nullptr).view({b, t.num_key_value_heads, hd});
    at::Tensor v = ApplyLinear(x, w.v, nullptr).view({b, t.num_key_value_heads, hd});
    q = q * cos + RotateHalf(q) * sin;
    k = k * cos + RotateHalf(k) * sin;
    at::Tensor keys = cache->keys()[l].narrow(0, 0, b).narrow(1, 0, window);
    at::Tensor values = cache->values()[l].narrow(0, 0, b).narrow(1, 0, window);
    keys.index_put_({rows, lengths}, k);
    values.index_put_({rows, lengths}, v);
    at::Tensor o = compat::GqaDecodeAttention(q.unsqueeze(2), keys.transpose(1, 2),
                                              values.transpose(1, 2), mask, scale);
    h = h + ApplyLinear(o.reshape({b, -1}), w.o, nullptr);
    at::Tensor y = RmsNorm(h, w.post_norm, t.rms_norm_eps);
    h = h + ApplyLinear(at::silu(ApplyLinear(y, w.gate, nullptr)) * ApplyLinear(y, w.up, nullptr),
                        w.down, nullptr);
  }
  return FinalNorm(h);
}

at::Tensor Qwen2VL::FinalNorm(const at::Tensor& hidden) const {
  return RmsNorm(hidden, weights_.language.final_norm, config_.text.rms_norm_eps);
}

at::Tensor Qwen2VL::Logits(const at::Tensor& hidden) const {
  return at::linear(hidden, weights_.language.lm_head.weight);
}

}  // namespace vlmd
