// Writes Hugging Face checkpoints (sharded safetensors + index) tensor by tensor, so a model
// is never held twice in memory. Internal to core/ (torch).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// A tensor to write, produced on demand (called once, in order).
struct TensorSource {
  std::string name;
  std::vector<int64_t> shape;
  std::function<at::Tensor()> produce;
};

// Writes model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json
// when the total exceeds `max_shard_bytes`. Tensors are converted to `dtype` on the CPU.
Status WriteCheckpoint(const std::string& dir, const std::vector<TensorSource>& tensors,
                       at::ScalarType dtype, int64_t max_shard_bytes = 5ll << 30);

}  // namespace vlmd
