// Qwen2-VL weights as at::Tensors, built from a checkpoint by name lookup. Module names follow
// the original hub layout (`visual.*`, `model.*`, `lm_head`); other layouts are renamed on load.
// Internal to core/ (torch).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/io/safetensors.h"

namespace vlmd {

// A linear layer: y = x W^T + b. `name` is the module path LoRA adapters target.
struct LinearWeights {
  std::string name;
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
};

struct NormWeights {
  at::Tensor weight;
  at::Tensor bias;  // LayerNorm only
};

struct VisionBlockWeights {
  NormWeights norm1, norm2;
  LinearWeights qkv, proj, fc1, fc2;
};

struct VisionWeights {
  LinearWeights patch_embed;  // [embed, 3*T*P*P], no bias
  std::vector<VisionBlockWeights> blocks;
  NormWeights merger_ln;
  LinearWeights merger_fc1, merger_fc2;
};

struct DecoderLayerWeights {
  NormWeights input_norm, post_norm;
  LinearWeights q, k, v, o, gate, up, down;
};

struct LanguageWeights {
  at::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<DecoderLayerWeights> layers;
  NormWeights final_norm;
  LinearWeights lm_head;  // shares embed_tokens when tied
};

struct ModelWeights {
  VisionWeights vision;
  LanguageWeights language;
};

// Maps a checkpoint or adapter tensor name to the original hub layout: drops a leading
// "base_model.model.", maps "model.language_model." to "model." and "model.visual." to
// "visual.". Other names are returned unchanged.
std::string CanonicalTensorName(const std::string& name);

// Converts a safetensors view into a tensor of `dtype` on `device` (always a copy).
at::Tensor ToTensor(const TensorView& view, at::ScalarType dtype, at::Device device);
// Element type of a view as an at::ScalarType.
at::ScalarType ToScalarType(DType dtype);

// Loads every weight named in spec §2 with its expected shape. Errors name the missing or
// misshapen tensor and the checkpoint. Unknown extra tensors are ignored with a warning.
StatusOr<ModelWeights> LoadModelWeights(const Checkpoint& checkpoint, const ModelConfig& config,
                                        at::ScalarType dtype, at::Device device);

// Every linear layer, by module name (for LoRA targeting and merging).
std::map<std::string, LinearWeights*> LinearsByName(ModelWeights* weights);
std::map<std::string, const LinearWeights*> LinearsByName(const ModelWeights& weights);

// Named tensors of the whole model in hub layout (for writing checkpoints).
std::vector<std::pair<std::string, at::Tensor>> NamedTensors(const ModelWeights& weights,
                                                             const ModelConfig& config);

}  // namespace vlmd
