#include "core/io/model_config.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

StatusOr<json> ParseObject(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  return j;
}

// Looks a key up in a list of scopes (first hit wins) and converts it, with typed errors.
class Lookup {
 public:
  Lookup(std::string source, std::vector<const json*> scopes)
      : source_(std::move(source)), scopes_(std::move(scopes)) {}

  const json* Find(const char* key) const {
    for (const json* s : scopes_) {
      if (s != nullptr && s->is_object() && s->contains(key) && !(*s)[key].is_null()) {
        return &(*s)[key];
      }
    }
    return nullptr;
  }

  template <typename T>
  Status Get(const char* key, T* out, bool required = false) const {
    const json* v = Find(key);
    if (v == nullptr) {
      if (!required) return absl::OkStatus();
      return absl::InvalidArgumentError(absl::StrCat(source_, ": missing \"", key, "\""));
    }
    bool ok = std::is_same<T, bool>::value ? v->is_boolean()
              : std::is_same<T, std::string>::value ? v->is_string()
              : std::is_integral<T>::value ? v->is_number_integer()
                                           : v->is_number();
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": \"", key, "\" has the wrong type (", v->type_name(), ")"));
    }
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // nlohmann would wrap 4294967360 to 64 in an int; say so instead.
      const bool fits =
          v->is_number_unsigned()
              ? v->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
              : v->get<int64_t>() >= std::numeric_limits<T>::min() &&
                    v->get<int64_t>() <= std::numeric_limits<T>::max();
      if (!fits) {
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": \"", key, "\" is out of range (", v->dump(), ")"));
      }
    }
    *out = v->get<T>();
    return absl::OkStatus();
  }

 private:
  std::string source_;
  std::vector<const json*> scopes_;
};

// Fills an optional when the key is present (and of the right type).
template <typename T>
Status GetOptional(const Lookup& look, const char* key, std::optional<T>* out) {
  if (look.Find(key) == nullptr) return absl::OkStatus();
  T value{};
  RETURN_IF_ERROR(look.Get(key, &value));
  *out = value;
  return absl::OkStatus();
}

const json* Child(const json& j, const char* key) {
  return j.contains(key) && j[key].is_object() ? &j[key] : nullptr;
}

Status ParseText(const json& j, const std::string& source, TextConfig* t) {
  const json* tc = Child(j, "text_config");
  Lookup look(source, {tc, &j});
  RETURN_IF_ERROR(look.Get("vocab_size", &t->vocab_size, true));
  RETURN_IF_ERROR(look.Get("hidden_size", &t->hidden_size, true));
  RETURN_IF_ERROR(look.Get("intermediate_size", &t->intermediate_size, true));
  RETURN_IF_ERROR(look.Get("num_hidden_layers", &t->num_hidden_layers, true));
  RETURN_IF_ERROR(look.Get("num_attention_heads", &t->num_attention_heads, true));
  t->num_key_value_heads = t->num_attention_heads;
  RETURN_IF_ERROR(look.Get("num_key_value_heads", &t->num_key_value_heads));
  t->rms_norm_eps = 1e-5;
  RETURN_IF_ERROR(look.Get("rms_norm_eps", &t->rms_norm_eps));
  RETURN_IF_ERROR(look.Get("max_position_embeddings", &t->max_position_embeddings));
  RETURN_IF_ERROR(look.Get("hidden_act", &t->hidden_act));
  // The composite model decides tying; older layouts only have the flat key.
  t->tie_word_embeddings = false;
  RETURN_IF_ERROR(Lookup(source, {&j, tc}).Get("tie_word_embeddings", &t->tie_word_embeddings));
  // Rotary: rope_parameters (5.x) or rope_scaling (4.x), in text_config or at the top level.
  const json* tc_params = tc ? Child(*tc, "rope_parameters") : nullptr;
  const json* tc_scaling = tc ? Child(*tc, "rope_scaling") : nullptr;
  Lookup rope(source, {tc_params, tc_scaling, Child(j, "rope_parameters"), Child(j, "rope_scaling"),
                       tc, &j});
  t->rope_theta = 1000000.0;
  RETURN_IF_ERROR(rope.Get("rope_theta", &t->rope_theta));
  const json* section = rope.Find("mrope_section");
  if (section == nullptr || !section->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no mrope_section in rope_parameters or rope_scaling"));
  }
  t->mrope_section.clear();
  for (const json& s : *section) {
    if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > 65536) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": mrope_section must hold integers in [0, 65536]"));
    }
    t->mrope_section.push_back(s.get<int>());
  }
  return absl::OkStatus();
}

Status ParseVision(const json& j, const std::string& source, VisionConfig* v) {
  const json* vc = Child(j, "vision_config");
  Lookup look(source + " vision_config", {vc});
  RETURN_IF_ERROR(look.Get("depth", &v->depth));
  RETURN_IF_ERROR(look.Get("embed_dim", &v->embed_dim));
  RETURN_IF_ERROR(look.Get("num_heads", &v->num_heads));
  RETURN_IF_ERROR(look.Get("hidden_size", &v->hidden_size));
  RETURN_IF_ERROR(look.Get("mlp_ratio", &v->mlp_ratio));
  RETURN_IF_ERROR(look.Get("spatial_patch_size", &v->patch_size));
  RETURN_IF_ERROR(look.Get("patch_size", &v->patch_size));
  RETURN_IF_ERROR(look.Get("temporal_patch_size", &v->temporal_patch_size));
  RETURN_IF_ERROR(look.Get("spatial_merge_size", &v->spatial_merge_size));
  RETURN_IF_ERROR(look.Get("in_chans", &v->in_channels));
  RETURN_IF_ERROR(look.Get("in_channels", &v->in_channels));
  RETURN_IF_ERROR(look.Get("hidden_act", &v->hidden_act));
  return absl::OkStatus();
}

Status ParseEosIds(const json& j, const std::string& source, std::vector<int32_t>* ids) {
  const json* tc = Child(j, "text_config");
  const json* eos = Lookup(source, {&j, tc}).Find("eos_token_id");
  if (eos == nullptr) return absl::OkStatus();
  ids->clear();
  auto is_id = [](const json& e) {
    return e.is_number_integer() && e.get<int64_t>() >= 0 &&
           e.get<int64_t>() <= std::numeric_limits<int32_t>::max();
  };
  if (eos->is_number_integer()) {
    if (!is_id(*eos)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": eos_token_id ", eos->dump(),
                                                     " is not a token id"));
    }
    ids->push_back(eos->get<int32_t>());
  } else if (eos->is_array()) {
    for (const json& e : *eos) {
      if (!is_id(e)) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": eos_token_id must hold token ids (ints >= 0)"));
      }
      ids->push_back(e.get<int32_t>());
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(source, ": eos_token_id must be int or list"));
  }
  return absl::OkStatus();
}

Status Require(bool ok, const std::string& source, const std::string& what) {
  return ok ? absl::OkStatus() : absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

Status Validate(const ModelConfig& c, const std::string& source) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  RETURN_IF_ERROR(Require(t.vocab_size > 0 && t.hidden_size > 0 && t.num_hidden_layers > 0 &&
                              t.intermediate_size > 0 && t.num_attention_heads > 0 &&
                              t.num_key_value_heads > 0,
                          source, "text sizes must be positive"));
  RETURN_IF_ERROR(Require(t.hidden_size % t.num_attention_heads == 0, source,
                          "hidden_size must be a multiple of num_attention_heads"));
  RETURN_IF_ERROR(Require(t.num_attention_heads % t.num_key_value_heads == 0, source,
                          "num_attention_heads must be a multiple of num_key_value_heads"));
  int64_t sum = 0;
  for (int s : t.mrope_section) sum += s;
  RETURN_IF_ERROR(Require(t.mrope_section.size() == 3 && sum * 2 == t.head_dim(), source,
                          absl::StrCat("mrope_section must have 3 entries summing to head_dim/2 = ",
                                       t.head_dim() / 2)));
  RETURN_IF_ERROR(Require(t.hidden_act == "silu", source, "only hidden_act \"silu\" is supported"));
  RETURN_IF_ERROR(Require(v.depth > 0 && v.embed_dim > 0 && v.num_heads > 0 &&
                              v.embed_dim % v.num_heads == 0 && v.head_dim() % 4 == 0,
                          source, "vision embed_dim/num_heads must give a head_dim divisible by 4"));
  RETURN_IF_ERROR(Require(std::isfinite(t.rms_norm_eps) && t.rms_norm_eps >= 0 &&
                              std::isfinite(t.rope_theta) && t.rope_theta > 0,
                          source, "rms_norm_eps must be >= 0 and rope_theta > 0"));
  RETURN_IF_ERROR(Require(v.mlp_ratio > 0 && v.embed_dim * v.mlp_ratio < (1 << 30), source,
                          "vision mlp_ratio must be > 0 and keep the MLP under 2^30 wide"));
  RETURN_IF_ERROR(Require(v.hidden_size == t.hidden_size, source,
                          "vision_config.hidden_size must equal the LLM hidden_size"));
  RETURN_IF_ERROR(Require(v.hidden_act == "quick_gelu", source,
                          "only vision hidden_act \"quick_gelu\" is supported"));
  RETURN_IF_ERROR(Require(v.in_channels == 3 && v.spatial_merge_size > 0 && v.patch_size > 0 &&
                              v.temporal_patch_size > 0,
                          source, "unsupported vision patch geometry"));
  for (int32_t id : {c.image_token_id, c.vision_start_token_id, c.vision_end_token_id}) {
    RETURN_IF_ERROR(Require(id >= 0 && id < t.vocab_size, source,
                            absl::StrCat("special token id ", id, " outside the vocabulary")));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<ModelConfig> ModelConfig::FromJson(const std::string& text, const std::string& source) {
  ASSIGN_OR_RETURN(json j, ParseObject(text, source));
  ModelConfig c;
  RETURN_IF_ERROR(ParseText(j, source, &c.text));
  c.vision.hidden_size = c.text.hidden_size;
  RETURN_IF_ERROR(ParseVision(j, source, &c.vision));
  Lookup ids(source, {&j, Child(j, "text_config")});
  RETURN_IF_ERROR(ids.Get("image_token_id", &c.image_token_id));
  RETURN_IF_ERROR(ids.Get("video_token_id", &c.video_token_id));
  RETURN_IF_ERROR(ids.Get("vision_start_token_id", &c.vision_start_token_id));
  RETURN_IF_ERROR(ids.Get("vision_end_token_id", &c.vision_end_token_id));
  RETURN_IF_ERROR(ids.Get("vision_token_id", &c.vision_token_id));
  RETURN_IF_ERROR(ids.Get("bos_token_id", &c.bos_token_id));
  RETURN_IF_ERROR(ParseEosIds(j, source, &c.eos_token_ids));
  RETURN_IF_ERROR(ids.Get("torch_dtype", &c.torch_dtype));
  RETURN_IF_ERROR(ids.Get("dtype", &c.torch_dtype));
  RETURN_IF_ERROR(Validate(c, source));
  return c;
}

StatusOr<ModelConfig> ModelConfig::Load(const std::string& dir) {
  std::string path = JoinPath(dir, "config.json");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return FromJson(text, path);
}

std::string ModelConfig::ToJson() const {
  json j;
  j["architectures"] = {"Qwen2VLForConditionalGeneration"};
  j["model_type"] = "qwen2_vl";
  j["vocab_size"] = text.vocab_size;
  j["hidden_size"] = text.hidden_size;
  j["intermediate_size"] = text.intermediate_size;
  j["num_hidden_layers"] = text.num_hidden_layers;
  j["num_attention_heads"] = text.num_attention_heads;
  j["num_key_value_heads"] = text.num_key_value_heads;
  j["hidden_act"] = text.hidden_act;
  j["rms_norm_eps"] = text.rms_norm_eps;
  j["rope_theta"] = text.rope_theta;
  j["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", text.mrope_section}};
  j["max_position_embeddings"] = text.max_position_embeddings;
  j["sliding_window"] = text.max_position_embeddings;
  j["use_sliding_window"] = false;
  j["max_window_layers"] = text.num_hidden_layers;
  j["tie_word_embeddings"] = text.tie_word_embeddings;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_ids.size() == 1 ? json(eos_token_ids[0]) : json(eos_token_ids);
  j["vision_start_token_id"] = vision_start_token_id;
  j["vision_end_token_id"] = vision_end_token_id;
  j["vision_token_id"] = vision_token_id;
  j["image_token_id"] = image_token_id;
  j["video_token_id"] = video_token_id;
  j["torch_dtype"] = torch_dtype;
  j["vision_config"] = {{"depth", vision.depth},
                        {"embed_dim", vision.embed_dim},
                        {"mlp_ratio", vision.mlp_ratio},
                        {"num_heads", vision.num_heads},
                        {"in_chans", vision.in_channels},
                        {"hidden_size", vision.hidden_size},
                        {"hidden_act", vision.hidden_act},
                        {"patch_size", vision.patch_size},
                        {"spatial_merge_size", vision.spatial_merge_size},
                        {"spatial_patch_size", vision.patch_size},
                        {"temporal_patch_size", vision.temporal_patch_size}};
  return j.dump(2);
}

StatusOr<PreprocessorConfig> PreprocessorConfig::FromJson(const std::string& text,
                                                          const std::string& source) {
  ASSIGN_OR_RETURN(json j, ParseObject(text, source));
  PreprocessorConfig p;
  const json* size = Child(j, "size");
  Lookup look(source, {&j});
  RETURN_IF_ERROR(Lookup(source, {size}).Get("shortest_edge", &p.min_pixels));
  RETURN_IF_ERROR(Lookup(source, {size}).Get("longest_edge", &p.max_pixels));
  // Explicit min/max_pixels override size (spec §3.1).
  RETURN_IF_ERROR(look.Get("min_pixels", &p.min_pixels));
  RETURN_IF_ERROR(look.Get("max_pixels", &p.max_pixels));
  RETURN_IF_ERROR(look.Get("patch_size", &p.patch_size));
  RETURN_IF_ERROR(look.Get("temporal_patch_size", &p.temporal_patch_size));
  RETURN_IF_ERROR(look.Get("merge_size", &p.merge_size));
  for (auto [key, dst] : {std::make_pair("image_mean", &p.image_mean),
                          std::make_pair("image_std", &p.image_std)}) {
    const json* v = look.Find(key);
    if (v == nullptr) continue;
    if (!v->is_array() || v->size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, " must be 3 numbers"));
    }
    for (int i = 0; i < 3; ++i) {
      if (!(*v)[i].is_number()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, " must be 3 numbers"));
      }
      (*dst)[i] = (*v)[i].get<float>();
    }
  }
  // smart_resize and the patch order divide by these.
  for (int size : {p.patch_size, p.temporal_patch_size, p.merge_size}) {
    if (size < 1 || size > 1024) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": patch_size, temporal_patch_size and merge_size must be in [1, 1024]"));
    }
  }
  if (p.min_pixels <= 0 || p.max_pixels < p.min_pixels) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": need 0 < min_pixels <= max_pixels"));
  }
  return p;
}

StatusOr<PreprocessorConfig> PreprocessorConfig::LoadOrDefault(const std::string& dir) {
  std::string path = JoinPath(dir, "preprocessor_config.json");
  if (!PathExists(path)) return PreprocessorConfig();
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return FromJson(text, path);
}

std::string PreprocessorConfig::ToJson() const {
  json j;
  j["image_processor_type"] = "Qwen2VLImageProcessor";
  j["processor_class"] = "Qwen2VLProcessor";
  j["min_pixels"] = min_pixels;
  j["max_pixels"] = max_pixels;
  j["size"] = {{"shortest_edge", min_pixels}, {"longest_edge", max_pixels}};
  j["patch_size"] = patch_size;
  j["temporal_patch_size"] = temporal_patch_size;
  j["merge_size"] = merge_size;
  j["image_mean"] = image_mean;
  j["image_std"] = image_std;
  j["do_resize"] = true;
  j["do_rescale"] = true;
  j["rescale_factor"] = 1.0 / 255.0;
  j["do_normalize"] = true;
  j["do_convert_rgb"] = true;
  j["resample"] = 3;
  return j.dump(2);
}

StatusOr<GenerationConfig> GenerationConfig::FromJson(const std::string& text,
                                                      const std::string& source) {
  ASSIGN_OR_RETURN(json j, ParseObject(text, source));
  GenerationConfig g;
  RETURN_IF_ERROR(ParseEosIds(j, source, &g.eos_token_ids));
  Lookup look(source, {&j});
  RETURN_IF_ERROR(GetOptional(look, "pad_token_id", &g.pad_token_id));
  RETURN_IF_ERROR(GetOptional(look, "bos_token_id", &g.bos_token_id));
  RETURN_IF_ERROR(look.Get("do_sample", &g.do_sample));
  RETURN_IF_ERROR(GetOptional(look, "temperature", &g.temperature));
  RETURN_IF_ERROR(GetOptional(look, "top_p", &g.top_p));
  RETURN_IF_ERROR(GetOptional(look, "repetition_penalty", &g.repetition_penalty));
  RETURN_IF_ERROR(GetOptional(look, "top_k", &g.top_k));
  RETURN_IF_ERROR(GetOptional(look, "max_new_tokens", &g.max_new_tokens));
  return g;
}

StatusOr<GenerationConfig> GenerationConfig::LoadOrDefault(const std::string& dir,
                                                           const ModelConfig& model) {
  std::string path = JoinPath(dir, "generation_config.json");
  GenerationConfig g;
  if (PathExists(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    ASSIGN_OR_RETURN(g, FromJson(text, path));
  }
  if (g.eos_token_ids.empty()) g.eos_token_ids = model.eos_token_ids;
  return g;
}

std::string GenerationConfig::ToJson() const {
  json j;
  j["eos_token_id"] = eos_token_ids;
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  j["do_sample"] = do_sample;
  if (temperature) j["temperature"] = *temperature;
  if (top_p) j["top_p"] = *top_p;
  if (top_k) j["top_k"] = *top_k;
  if (repetition_penalty) j["repetition_penalty"] = *repetition_penalty;
  if (max_new_tokens) j["max_new_tokens"] = *max_new_tokens;
  return j.dump(2);
}

}  // namespace vlmd
