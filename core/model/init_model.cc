#include "core/model/init_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"

namespace vlmd {

StatusOr<ModelConfig> PresetConfig(const std::string& preset) {
  ModelConfig c;
  c.eos_token_ids = {151645};
  TextConfig& t = c.text;
  VisionConfig& v = c.vision;
  if (preset == "tiny") {
    t.hidden_size = 128;
    t.intermediate_size = 384;
    t.num_hidden_layers = 4;
    t.num_attention_heads = 4;
    t.num_key_value_heads = 2;
    t.mrope_section = {4, 6, 6};
    t.tie_word_embeddings = true;
    v.depth = 2;
    v.embed_dim = 64;
    v.num_heads = 4;
    v.mlp_ratio = 2;
    c.torch_dtype = "float32";
  } else if (preset == "2b") {
    t.hidden_size = 1536;
    t.intermediate_size = 8960;
    t.num_attention_heads = 12;
    t.num_key_value_heads = 2;
    t.tie_word_embeddings = true;
  } else if (preset == "7b") {
    t.vocab_size = 152064;
    t.hidden_size = 3584;
    t.intermediate_size = 18944;
    t.num_attention_heads = 28;
    t.num_key_value_heads = 4;
    t.tie_word_embeddings = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown preset '", preset,
                                                   "' (tiny, 2b, 7b)"));
  }
  v.hidden_size = t.hidden_size;
  return c;
}

namespace {

class Init {
 public:
  Init(uint64_t seed, at::ScalarType dtype)
      : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)), dtype_(dtype) {}

  at::Tensor Normal(std::vector<int64_t> shape) {
    return at::normal(0.0, 0.02, shape, gen_, at::TensorOptions().dtype(at::kFloat)).to(dtype_);
  }
  at::Tensor Fill(int64_t n, double value) { return at::full({n}, value, at::TensorOptions().dtype(dtype_)); }
  LinearWeights Linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    LinearWeights l{name, Normal({out, in}), at::Tensor()};
    if (bias) l.bias = Fill(out, 0.0);
    return l;
  }
  NormWeights Norm(int64_t n, bool bias) {
    NormWeights w{Fill(n, 1.0), at::Tensor()};
    if (bias) w.bias = Fill(n, 0.0);
    return w;
  }

 private:
  at::Generator gen_;
  at::ScalarType dtype_;
};

VisionWeights RandomVision(Init& init, const VisionConfig& v) {
  VisionWeights w;
  const int64_t e = v.embed_dim, m = v.mlp_hidden();
  const int64_t merged = e * v.spatial_merge_size * v.spatial_merge_size;
  w.patch_embed = init.Linear("visual.patch_embed.proj", e, v.patch_dim(), false);
  for (int i = 0; i < v.depth; ++i) {
    std::string p = absl::StrCat("visual.blocks.", i, ".");
    VisionBlockWeights b{init.Norm(e, true), init.Norm(e, true),
                         init.Linear(p + "attn.qkv", 3 * e, e, true),
                         init.Linear(p + "attn.proj", e, e, true),
                         init.Linear(p + "mlp.fc1", m, e, true),
                         init.Linear(p + "mlp.fc2", e, m, true)};
    w.blocks.push_back(std::move(b));
  }
  w.merger_ln = init.Norm(e, true);
  w.merger_fc1 = init.Linear("visual.merger.mlp.0", merged, merged, true);
  w.merger_fc2 = init.Linear("visual.merger.mlp.2", v.hidden_size, merged, true);
  return w;
}

LanguageWeights RandomLanguage(Init& init, const TextConfig& t) {
  LanguageWeights w;
  const int64_t h = t.hidden_size, i = t.intermediate_size, hd = t.head_dim();
  const int64_t q = t.num_attention_heads * hd, kv = t.num_key_value_heads * hd;
  w.embed_tokens = init.Normal({t.vocab_size, h});
  for (int l = 0; l < t.num_hidden_layers; ++l) {
    std::string p = absl::StrCat("model.layers.", l, ".");
    DecoderLayerWeights d{init.Norm(h, false), init.Norm(h, false),
                          init.Linear(p + "self_attn.q_proj", q, h, true),
                          init.Linear(p + "self_attn.k_proj", kv, h, true),
                          init.Linear(p + "self_attn.v_proj", kv, h, true),
                          init.Linear(p + "self_attn.o_proj", h, q, false),
                          init.Linear(p + "mlp.gate_proj", i, h, false),
                          init.Linear(p + "mlp.up_proj", i, h, false),
                          init.Linear(p + "mlp.down_proj", h, i, false)};
    w.layers.push_back(std::move(d));
  }
  w.final_norm = init.Norm(h, false);
  w.lm_head.name = "lm_head";
  w.lm_head.weight = t.tie_word_embeddings ? w.embed_tokens : init.Normal({t.vocab_size, h});
  return w;
}

}  // namespace

ModelWeights RandomWeights(const ModelConfig& config, uint64_t seed, at::ScalarType dtype) {
  Init init(seed, dtype);
  ModelWeights w;
  w.vision = RandomVision(init, config.vision);
  w.language = RandomLanguage(init, config.text);
  return w;
}

}  // namespace vlmd
