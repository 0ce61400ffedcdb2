#include "core/eval/batch_generate.h"

#include <c10/core/InferenceMode.h>

#include <memory>

#include "core/engine/continuation.h"
#include "core/engine/step.h"

namespace vlmd {
namespace {

// One sequence being decoded.
struct Slot {
  size_t index = 0;
  std::vector<int32_t> ids;
  ImageBatch images;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Continuation> continuation;
  int64_t past = 0, rope_delta = 0;
  int32_t next_token = -1;  // -1 until prefilled
};

class BatchDecoder {
 public:
  BatchDecoder(const ModelBundle& bundle, const LoraAdapter* adapter, const SamplingParams& params,
               const BatchGenerateOptions& options)
      : bundle_(bundle),
        model_(*bundle.model),
        adapter_(adapter),
        params_(params),
        options_(options) {}

  // Opens slots for the next prompts while the batch and the prefill allowance last.
  Status Admit(size_t count, const PromptProvider& prompts, size_t* next);
  // One forward pass over every slot; finished slots are handed to `done` and removed.
  void Step(const std::function<void(Slot&)>& done);
  bool empty() const { return slots_.empty(); }

 private:
  const ModelBundle& bundle_;
  const Qwen2VL& model_;
  const LoraAdapter* adapter_;
  const SamplingParams& params_;
  const BatchGenerateOptions& options_;
  std::vector<Slot> slots_;
};

Status BatchDecoder::Admit(size_t count, const PromptProvider& prompts, size_t* next) {
  int64_t prefill = 0;
  while (*next < count && static_cast<int>(slots_.size()) < std::max(1, options_.batch_size)) {
    ASSIGN_OR_RETURN(PreparedPrompt prompt, prompts(*next));
    const int64_t tokens = static_cast<int64_t>(prompt.ids.size());
    Slot s;
    s.index = (*next)++;
    s.images = ToImageBatch(prompt.images);
    s.ids = std::move(prompt.ids);
    s.cache = std::make_unique<KvCache>(model_.config().text, tokens + params_.max_new_tokens,
                                        model_.dtype(), model_.device());
    s.continuation = std::make_unique<Continuation>(params_, s.ids, bundle_.tokenizer);
    slots_.push_back(std::move(s));
    prefill += tokens;
    if (prefill >= options_.max_prefill_tokens) break;
  }
  return absl::OkStatus();
}

void BatchDecoder::Step(const std::function<void(Slot&)>& done) {
  std::vector<StepSequence> seqs;
  for (Slot& s : slots_) {
    StepSequence q = s.next_token < 0 ? PrefillSequence(model_, s.ids, &s.images, &s.rope_delta)
                                      : DecodeSequence(s.next_token, s.past, s.rope_delta);
    q.cache = s.cache.get();
    q.adapter = adapter_;
    seqs.push_back(std::move(q));
  }
  at::Tensor hidden = RunStep(model_, seqs);
  // The logits stay on the device; one argmax and one copy to the host for the batch.
  at::Tensor logits = model_.Logits(hidden.index_select(0, LastRows(seqs, model_.device())));
  std::vector<Continuation*> continuations;
  for (Slot& s : slots_) continuations.push_back(s.continuation.get());
  std::vector<Continuation::Update> updates = Continuation::StepAll(continuations, logits);
  std::vector<Slot> still;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.past += static_cast<int64_t>(seqs[i].ids.size());
    s.next_token = updates[i].token;
    if (s.continuation->finished()) {
      done(s);
    } else {
      still.push_back(std::move(s));
    }
  }
  slots_ = std::move(still);
}

}  // namespace

StatusOr<std::vector<GenerationResult>> GenerateBatched(
    const ModelBundle& bundle, const LoraAdapter* adapter, size_t count,
    const PromptProvider& prompts, const SamplingParams& params,
    const BatchGenerateOptions& options,
    const std::function<void(size_t, const GenerationResult&)>& on_done) {
  c10::InferenceMode inference_mode;
  std::vector<GenerationResult> results(count);
  BatchDecoder decoder(bundle, adapter, params, options);
  size_t next = 0;
  while (next < count || !decoder.empty()) {
    RETURN_IF_ERROR(decoder.Admit(count, prompts, &next));
    decoder.Step([&](Slot& s) {
      results[s.index] = s.continuation->result();
      results[s.index].usage.prompt_tokens = static_cast<int64_t>(s.ids.size());
      if (on_done) on_done(s.index, results[s.index]);
    });
  }
  return results;
}

}  // namespace vlmd
