// Qwen2-VL checkpoint configuration: config.json in every layout seen in the wild
// (spec/qwen2vl.md §1.2), preprocessor_config.json and generation_config.json.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// The vision tower; defaults are the class defaults used to fill stripped configs.
struct VisionConfig {
  int depth = 32;
  int embed_dim = 1280;
  int num_heads = 16;
  int hidden_size = 3584;  // merger output width = the LLM width
  double mlp_ratio = 4.0;
  int patch_size = 14;
  int temporal_patch_size = 2;
  int spatial_merge_size = 2;
  int in_channels = 3;
  std::string hidden_act = "quick_gelu";
  int head_dim() const { return embed_dim / num_heads; }
  int mlp_hidden() const { return static_cast<int>(embed_dim * mlp_ratio); }
  int patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
};

// The Qwen2 language model.
struct TextConfig {
  int vocab_size = 151936;
  int hidden_size = 1536;
  int intermediate_size = 8960;
  int num_hidden_layers = 28;
  int num_attention_heads = 12;
  int num_key_value_heads = 2;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1000000.0;
  std::vector<int> mrope_section = {16, 24, 24};
  bool tie_word_embeddings = true;
  int max_position_embeddings = 32768;
  std::string hidden_act = "silu";
  int head_dim() const { return hidden_size / num_attention_heads; }
};

// Everything config.json says about a Qwen2-VL model.
struct ModelConfig {
  TextConfig text;
  VisionConfig vision;
  int32_t image_token_id = 151655;
  int32_t video_token_id = 151656;
  int32_t vision_start_token_id = 151652;
  int32_t vision_end_token_id = 151653;
  int32_t vision_token_id = 151654;
  int32_t bos_token_id = 151643;
  std::vector<int32_t> eos_token_ids = {151645};
  std::string torch_dtype = "bfloat16";

  // Parses config.json text; `source` names the file in errors. Validates shapes (heads divide
  // the width, mrope sections sum to head_dim/2, ids inside the vocabulary).
  static StatusOr<ModelConfig> FromJson(const std::string& text, const std::string& source);
  // Reads <dir>/config.json.
  static StatusOr<ModelConfig> Load(const std::string& dir);
  // config.json in the original release's flat layout (what `init-model` and merges write).
  std::string ToJson() const;
};

// preprocessor_config.json: pixel limits and normalization.
struct PreprocessorConfig {
  int64_t min_pixels = 3136;
  int64_t max_pixels = 1003520;
  int patch_size = 14;
  int temporal_patch_size = 2;
  int merge_size = 2;
  std::array<float, 3> image_mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std = {0.26862954f, 0.26130258f, 0.27577711f};

  static StatusOr<PreprocessorConfig> FromJson(const std::string& text, const std::string& source);
  // Reads <dir>/preprocessor_config.json, or returns the processor defaults when absent.
  static StatusOr<PreprocessorConfig> LoadOrDefault(const std::string& dir);
  std::string ToJson() const;
};

// generation_config.json: stop ids and default sampling parameters.
struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> pad_token_id;
  std::optional<int32_t> bos_token_id;
  bool do_sample = false;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<int> max_new_tokens;

  static StatusOr<GenerationConfig> FromJson(const std::string& text, const std::string& source);
  // Reads <dir>/generation_config.json, or a config holding only `model`'s eos ids.
  static StatusOr<GenerationConfig> LoadOrDefault(const std::string& dir, const ModelConfig& model);
  std::string ToJson() const;
};

}  // namespace vlmd
