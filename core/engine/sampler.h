// Picks the next token of one sequence from its logits, as transformers' generate does:
// repetition penalty, then temperature, top-k, top-p, then argmax or a seeded draw.
// Internal to core/ (torch). Not thread-safe; one per sequence.
#pragma once

#include <ATen/ATen.h>

#include <unordered_set>
#include <vector>

#include "core/engine/sampling.h"

namespace vlmd {

class Sampler {
 public:
  // `context` is every token the penalty looks at so far (the prompt).
  Sampler(const SamplingParams& params, const std::vector<int32_t>& context);

  // logits: [vocab] for this sequence (any dtype). On a CUDA device the processing and the
  // draw stay there (one small copy back per token). Fills `logprob` when requested.
  int32_t Next(const at::Tensor& logits, TokenLogprob* logprob);
  // The scores whose argmax is the next token: the processed logits (penalty, temperature,
  // top-k, top-p), plus, when sampling, Gumbel noise -log(E) with E ~ Exp(1) drawn from the
  // request's generator (the Gumbel-max draw: distributed as softmax of the processed logits).
  // [vocab] float on the logits' device.
  at::Tensor Scores(const at::Tensor& logits);
  // True when the scores are just logits / temperature + noise (sampling without repetition
  // penalty, top-k or top-p): a batch can then scale and draw many rows at once.
  bool TemperatureOnly() const;
  // True when the scores are the raw logits (greedy without repetition penalty).
  bool RawArgmax() const;
  // Fills `out` (float, on the logits' device) with the Exp(1) draws of one step.
  void DrawExponential(at::Tensor out);
  const SamplingParams& params() const { return params_; }
  // Records a token that was appended (for the repetition penalty).
  void Append(int32_t token);

 private:
  at::Tensor Process(at::Tensor scores) const;

  // The generator for `device`, created on first use with the request's seed.
  at::Generator& GeneratorFor(const at::Device& device);

  SamplingParams params_;
  std::unordered_set<int32_t> seen_;
  at::Generator cpu_generator_, device_generator_;
};

// log-softmax of raw logits -> the chosen token's logprob and the top `k` alternatives.
TokenLogprob ComputeLogprob(const at::Tensor& logits, int32_t token, int k);

}  // namespace vlmd
