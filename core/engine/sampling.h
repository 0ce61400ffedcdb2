// Generation parameters and per-token results. No torch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/io/model_config.h"

namespace vlmd {

// What the caller asked for. Unset optionals fall back to the model's generation_config.json
// (see ResolveSampling); a temperature of 0 means greedy decoding.
struct SamplingRequest {
  std::optional<int> max_new_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<double> repetition_penalty;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // stop strings; the text ends before the first one
  int top_logprobs = 0;           // alternatives per token (0..20)
  bool logprobs = false;          // report the chosen token's log-probability
  bool ignore_eos = false;        // keep going past stop ids (benchmarks)
};

// Fully resolved parameters used by the sampler.
struct SamplingParams {
  int max_new_tokens = 256;
  double temperature = 0.0;  // 0 = greedy (argmax after the repetition penalty)
  double top_p = 1.0;        // 1 = off
  int top_k = 0;             // 0 = off
  double repetition_penalty = 1.0;  // 1 = off
  uint64_t seed = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int top_logprobs = 0;
  bool logprobs = false;
  bool greedy() const { return temperature == 0.0; }
};

// Checks ranges (INVALID_ARGUMENT naming the field) and fills unset fields from `defaults`.
// `max_new_tokens_limit` caps max_new_tokens (the server's limit).
StatusOr<SamplingParams> ResolveSampling(const SamplingRequest& request,
                                         const GenerationConfig& defaults,
                                         int max_new_tokens_limit);

// The log-probability of one generated token and its best alternatives (log-softmax of the
// raw logits, as transformers' output_logits).
struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

// Why generation ended.
enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason reason);

}  // namespace vlmd

namespace vlmd {

// Usage and timings of one request.
struct Usage {
  int64_t prompt_tokens = 0;      // including image placeholder tokens
  int64_t image_tokens = 0;
  int64_t completion_tokens = 0;
};
struct Timings {
  double queue_ms = 0;       // admission wait
  double ttft_ms = 0;        // submit -> first token
  double total_ms = 0;       // submit -> done
};

// The whole answer to one generation request.
struct GenerationResult {
  std::vector<int32_t> token_ids;  // generated ids, including a final stop id
  std::string text;                // decoded, special tokens skipped, cut at a stop string
  FinishReason finish_reason = FinishReason::kLength;
  std::vector<TokenLogprob> logprobs;  // one per generated token when requested
  Usage usage;
  Timings timings;
};

}  // namespace vlmd
