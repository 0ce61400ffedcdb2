// PEFT LoRA adapters (spec/qwen2vl.md §8): loading adapter_config.json +
// adapter_model.safetensors, applying them unmerged to chosen rows of a batch (several adapters
// in one batch), and merging into base weights. Internal to core/ (torch).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/model/weights.h"

namespace vlmd {

// What adapter_config.json says (the fields that change the math or the targets).
struct LoraConfig {
  int r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  bool use_rslora = false;
  std::vector<std::string> target_modules;  // list form
  std::string target_regex;                 // string form (re.fullmatch), when not a list
  std::vector<std::string> exclude_modules;
  std::map<std::string, int> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  std::string bias = "none";
  std::string base_model_name_or_path;
  std::string task_type = "CAUSAL_LM";

  static StatusOr<LoraConfig> FromJson(const std::string& text, const std::string& source);
  std::string ToJson() const;
  // True if PEFT would wrap module `name` (full dotted name in the hub layout).
  bool Targets(const std::string& name) const;
  // Rank and scaling of module `name` (rank_pattern / alpha_pattern, rsLoRA).
  int RankFor(const std::string& name) const;
  double ScaleFor(const std::string& name) const;
};

// One wrapped linear layer: delta(x) = (dropout(x) A^T) B^T * scale.
struct LoraModule {
  at::Tensor a;  // [r, in]
  at::Tensor b;  // [out, r]
  double scale = 1.0;
};

// A loaded adapter. Immutable once built for inference; the trainer owns a mutable one.
struct LoraAdapter {
  std::string name;
  LoraConfig config;
  std::map<std::string, LoraModule> modules;  // by module name in the hub layout

  // Loads a PEFT adapter directory, checking every module against the model's linear shapes.
  static StatusOr<std::shared_ptr<LoraAdapter>> Load(const std::string& dir,
                                                     const ModelWeights& model,
                                                     at::ScalarType dtype, at::Device device);
  // The same with the base shapes given by a lookup: module name -> {out, in}, or nullopt
  // for a module the base model does not have (merging reads shapes from the checkpoint).
  using ShapeLookup =
      std::function<std::optional<std::pair<int64_t, int64_t>>(const std::string& module)>;
  static StatusOr<std::shared_ptr<LoraAdapter>> Load(const std::string& dir,
                                                     const ShapeLookup& base_shape,
                                                     at::ScalarType dtype, at::Device device);
  // Writes adapter_config.json + adapter_model.safetensors with PEFT's key names
  // (base_model.model.<module>.lora_A.weight) in float32 or the given dtype.
  Status Save(const std::string& dir, at::ScalarType dtype) const;
};

// Which rows of a packed activation use which adapter in one forward pass.
struct LoraRows {
  const LoraAdapter* adapter = nullptr;
  at::Tensor rows;  // int64 row indices; undefined = every row
};
struct LoraContext {
  std::vector<LoraRows> bindings;
  double dropout = 0.0;  // applied to the LoRA input when training
  bool training = false;
  bool empty() const { return bindings.empty(); }
};

// Builds a context for a packed batch made of consecutive segments of `lengths` rows, segment
// i using `adapters[i]` (nullptr = base model). A single adapter over all rows needs no index.
LoraContext BuildLoraContext(const std::vector<const LoraAdapter*>& adapters,
                             const std::vector<int64_t>& lengths, at::Device device,
                             double dropout = 0.0, bool training = false);

// y = x W^T + b (+ the LoRA deltas of every binding that wraps `w`).
at::Tensor ApplyLinear(const at::Tensor& x, const LinearWeights& w, const LoraContext* lora);

// Adds (B A) * scale of every module of `adapter` to a copy of the matching base weight,
// computing in float32. Returns module name -> merged weight.
std::map<std::string, at::Tensor> MergedWeights(const LoraAdapter& adapter,
                                                const ModelWeights& model);

}  // namespace vlmd
