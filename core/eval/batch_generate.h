// Batched decoding of many prompts with one model and one adapter, for evaluation inside a
// training job: up to `batch_size` sequences run together, each with its own KV cache; a
// finished sequence frees its slot for the next prompt, whose prefill shares the step with
// the others' decode tokens (the engine's continuous batching, without its queue and threads).
// Internal to core/ (torch). Not thread-safe; one call at a time per model is not required.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/base/status.h"
#include "core/engine/model_bundle.h"
#include "core/engine/prompt.h"
#include "core/engine/sampling.h"

namespace vlmd {

struct BatchGenerateOptions {
  int batch_size = 8;                 // sequences decoded together
  int64_t max_prefill_tokens = 8192;  // prompt tokens admitted into one step (at least one prompt)
};

// Supplies prompt `index` (tokens and preprocessed images), called when its slot opens.
using PromptProvider = std::function<StatusOr<PreparedPrompt>(size_t index)>;

// Generates a completion for prompts 0..count-1 with `adapter` (null = the base model) and
// `params`, returning the results in prompt order. `on_done` (optional) sees each result as it
// finishes. Errors of the provider stop the run.
StatusOr<std::vector<GenerationResult>> GenerateBatched(
    const ModelBundle& bundle, const LoraAdapter* adapter, size_t count,
    const PromptProvider& prompts, const SamplingParams& params,
    const BatchGenerateOptions& options,
    const std::function<void(size_t, const GenerationResult&)>& on_done = {});

}  // namespace vlmd
