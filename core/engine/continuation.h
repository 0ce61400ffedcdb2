// The growing answer of one sequence: sampling, stop ids, stop strings (held back while they
// may still be forming, so streamed text never shows part of one), text pieces for streaming.
// Internal to core/ (torch). Not thread-safe; one per sequence.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "core/engine/sampler.h"
#include "core/engine/sampling.h"
#include "core/text/tokenizer.h"

namespace vlmd {

class Continuation {
 public:
  // `tokenizer` may be null (then no text and no stop strings).
  Continuation(const SamplingParams& params, const std::vector<int32_t>& prompt,
               std::shared_ptr<const Tokenizer> tokenizer);

  // What one step added.
  struct Update {
    int32_t token = 0;
    std::string text;  // newly final text (may be empty)
    TokenLogprob logprob;
  };
  // Samples the next token from `logits` [vocab] and records it.
  Update Step(const at::Tensor& logits);
  // True when the next token is plain argmax of the raw logits (greedy, no repetition penalty,
  // no log-probabilities): then a fused argmax on the device can feed Accept directly.
  bool ArgmaxSuffices() const;
  // Records a token chosen elsewhere (the device argmax when ArgmaxSuffices()).
  Update Accept(int32_t token, const TokenLogprob& logprob = TokenLogprob());
  // Samples the next token of each of `continuations` from row i of `logits` [n, vocab] and
  // records it: the same draws as Step row by row, with one argmax and one copy to the host
  // for the whole batch (no synchronisation per row). Updates in the continuations' order.
  static std::vector<Update> StepAll(const std::vector<Continuation*>& continuations,
                                     const at::Tensor& logits);
  // Ends the sequence early (cancellation, error); flushes pending text into the result.
  void Finish(FinishReason reason);

  bool finished() const { return finished_; }
  const std::vector<int32_t>& tokens() const { return result_.token_ids; }
  // The result so far (complete once finished()).
  const GenerationResult& result() const { return result_; }
  GenerationResult& mutable_result() { return result_; }

 private:
  std::string TakeSafeText(bool final);

  SamplingParams params_;
  Sampler sampler_;
  std::unique_ptr<IncrementalDecoder> decoder_;
  std::string full_text_;
  size_t emitted_ = 0;
  bool finished_ = false;
  GenerationResult result_;
};

}  // namespace vlmd
