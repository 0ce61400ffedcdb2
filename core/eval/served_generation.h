// Generation for an evaluation through the inference service: one request per item, at most
// `concurrency` in flight so the engine batches them, results handed back in completion order
// on the calling thread. No torch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/api/inference.h"
#include "core/eval/eval_items.h"

namespace vlmd::eval {

struct ServedGenerationOptions {
  std::string model;           // served model name
  std::string adapter;         // served adapter name ("" = base model)
  SamplingRequest sampling;    // as the caller gave it (greedy unless set)
  int concurrency = 8;         // requests in flight
  std::string request_prefix;  // request ids are <prefix>-<index>
  // Images are read here (any path: the data set reader checked them) and sent as bytes.
  ImagePolicy images;
};

// Called for each finished item (a result, or the error that ended its request); returns
// false to stop: requests in flight are cancelled and awaited, and GenerateServed returns
// CANCELLED.
using ItemDone = std::function<bool(size_t index, const StatusOr<GenerationResult>& result)>;

// Runs every item. A request the service refuses (bad prompt, too long, missing image) counts
// as that item's error; a full queue is retried; UNAVAILABLE (shutdown) ends the run with it.
Status GenerateServed(api::InferenceService* inference, const std::vector<EvalItem>& items,
                      const ServedGenerationOptions& options, const ItemDone& on_done);

}  // namespace vlmd::eval
