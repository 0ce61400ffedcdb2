// One forward pass over a packed batch of sequences: prefill pieces (with images) and decode
// tokens side by side. Shared by the offline tool, the serving engine and evaluation.
// Internal to core/ (torch).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "core/engine/prompt.h"
#include "core/model/qwen2vl.h"

namespace vlmd {

// Pixel rows and grids of a prepared prompt, as tensors.
struct ImageBatch {
  at::Tensor pixel_values;  // float32 [patches, patch_dim] (undefined when no images)
  std::vector<GridThw> grids;
};
ImageBatch ToImageBatch(const std::vector<PixelPatches>& images);

// The new tokens of one sequence in a step.
struct StepSequence {
  std::vector<int32_t> ids;                  // tokens fed this step
  std::vector<int64_t> pos_t, pos_h, pos_w;  // their M-RoPE positions
  const ImageBatch* images = nullptr;        // prefill with images only
  KvCache* cache = nullptr;                  // the sequence's cache (null = none)
  int64_t past = 0;                          // tokens already cached
  const LoraAdapter* adapter = nullptr;
};

// Positions of a whole prompt (prefill) and its rope delta.
StepSequence PrefillSequence(const Qwen2VL& model, const std::vector<int32_t>& ids,
                             const ImageBatch* images, int64_t* rope_delta);
// Positions of one decode token: past + delta on all three streams.
StepSequence DecodeSequence(int32_t token, int64_t past, int64_t rope_delta);

// Runs the step. Returns final-normed hidden states [T, hidden] of every fed token.
at::Tensor RunStep(const Qwen2VL& model, const std::vector<StepSequence>& seqs);

// Rows of the last token of each sequence in RunStep's output.
at::Tensor LastRows(const std::vector<StepSequence>& seqs, at::Device device);

}  // namespace vlmd
