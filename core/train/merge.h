// Merging a LoRA adapter into its base checkpoint (`MergeLora`, `vlmd merge`): W + B A s for
// every wrapped layer, streamed tensor by tensor into a Hugging Face checkpoint (sharded
// safetensors, config.json, tokenizer files, preprocessor_config.json with the adapter's pixel
// limits, generation_config.json), so a 7B merge never holds two copies. Torch-free header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/base/status.h"

namespace vlmd {

struct MergeOptions {
  std::string base_dir;
  std::string adapter_dir;
  std::string output_dir;
  std::string dtype = "auto";  // auto = the base checkpoint's dtype
  // Pixel limits written to preprocessor_config.json (default: the adapter's vlmd_adapter.json,
  // else the base model's).
  std::optional<int64_t> min_pixels, max_pixels;
  int64_t max_shard_bytes = 5LL << 30;
};

struct MergeStats {
  int64_t tensors = 0;
  int64_t merged_modules = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

StatusOr<MergeStats> MergeAdapter(const MergeOptions& options);

}  // namespace vlmd
