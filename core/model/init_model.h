// Randomly initialised Qwen2-VL checkpoints of named shapes (`vlmd init-model`).
// Internal to core/ (torch).
#pragma once

#include <cstdint>
#include <string>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/model/weights.h"

namespace vlmd {

// "tiny" (the embedded default: full vocabulary, small enough to train on two CPU cores),
// "2b" and "7b" (the real shapes, for benchmarks).
StatusOr<ModelConfig> PresetConfig(const std::string& preset);

// Initialises weights as transformers does (normal(0, initializer_range) for linear and
// embedding weights, zero biases, unit norms) with a seeded generator.
ModelWeights RandomWeights(const ModelConfig& config, uint64_t seed, at::ScalarType dtype);

}  // namespace vlmd
