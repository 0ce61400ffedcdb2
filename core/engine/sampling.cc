#include "core/engine/sampling.h"

#include <random>

#include "absl/strings/str_cat.h"

namespace vlmd {

StatusOr<SamplingParams> ResolveSampling(const SamplingRequest& r, const GenerationConfig& d,
                                         int max_new_tokens_limit) {
  SamplingParams p;
  p.max_new_tokens = r.max_new_tokens.value_or(d.max_new_tokens.value_or(
      std::min(256, max_new_tokens_limit)));
  if (p.max_new_tokens < 1 || p.max_new_tokens > max_new_tokens_limit) {
    return absl::InvalidArgumentError(absl::StrCat("max_new_tokens must be in [1, ",
                                                   max_new_tokens_limit, "], got ",
                                                   p.max_new_tokens));
  }
  if (r.temperature) {
    p.temperature = *r.temperature;
  } else if (d.do_sample) {
    p.temperature = d.temperature.value_or(1.0);
  }
  if (!(p.temperature >= 0.0) || p.temperature > 100.0) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be in [0, 100], got ",
                                                   p.temperature));
  }
  bool sampling_defaults = d.do_sample && !r.temperature;
  p.top_p = r.top_p.value_or(sampling_defaults ? d.top_p.value_or(1.0) : 1.0);
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  }
  p.top_k = r.top_k.value_or(sampling_defaults ? d.top_k.value_or(0) : 0);
  if (p.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", p.top_k));
  }
  p.repetition_penalty = r.repetition_penalty.value_or(d.repetition_penalty.value_or(1.0));
  if (!(p.repetition_penalty > 0.0) || p.repetition_penalty > 10.0) {
    return absl::InvalidArgumentError(absl::StrCat("repetition_penalty must be in (0, 10], got ",
                                                   p.repetition_penalty));
  }
  if (r.top_logprobs < 0 || r.top_logprobs > 20) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs must be in [0, 20], got ",
                                                   r.top_logprobs));
  }
  for (const std::string& s : r.stop) {
    if (s.empty()) return absl::InvalidArgumentError("stop strings must not be empty");
  }
  if (r.stop.size() > 16) return absl::InvalidArgumentError("at most 16 stop strings");
  p.stop = r.stop;
  p.top_logprobs = r.top_logprobs;
  p.logprobs = r.logprobs || r.top_logprobs > 0;
  p.seed = r.seed ? *r.seed : std::random_device{}();
  if (!r.ignore_eos) p.stop_token_ids = d.eos_token_ids;
  return p;
}

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

}  // namespace vlmd
