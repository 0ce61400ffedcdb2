#include "core/engine/continuation.h"

#include <algorithm>

namespace vlmd {

Continuation::Continuation(const SamplingParams& params, const std::vector<int32_t>& prompt,
                           std::shared_ptr<const Tokenizer> tokenizer)
    : params_(params), sampler_(params, prompt) {
  if (tokenizer) {
    decoder_ = std::make_unique<IncrementalDecoder>(std::move(tokenizer),
                                                    /*skip_special_tokens=*/true);
  }
}

Continuation::Update Continuation::Step(const at::Tensor& logits) {
  TokenLogprob logprob;
  int32_t token = sampler_.Next(logits, params_.logprobs ? &logprob : nullptr);
  return Accept(token, logprob);
}

std::vector<Continuation::Update> Continuation::StepAll(
    const std::vector<Continuation*>& continuations, const at::Tensor& logits) {
  const int64_t n = static_cast<int64_t>(continuations.size());
  if (n == 0) return {};
  at::Tensor raw = logits.to(at::kFloat);
  // Rows that only scale and draw share the kernels: raw / temperature - log(E), with E = 1
  // (no noise) on every other row. The rest get their scores one row at a time.
  std::vector<float> temperatures(static_cast<size_t>(n), 1.0f);
  std::vector<int64_t> general;
  at::Tensor exponential;
  for (int64_t i = 0; i < n; ++i) {
    Sampler& sampler = continuations[static_cast<size_t>(i)]->sampler_;
    if (sampler.TemperatureOnly()) {
      if (!exponential.defined()) exponential = at::ones_like(raw);
      temperatures[static_cast<size_t>(i)] = static_cast<float>(sampler.params().temperature);
      sampler.DrawExponential(exponential[i]);
    } else if (!sampler.RawArgmax()) {
      general.push_back(i);
    }
  }
  at::Tensor scores = raw;
  if (exponential.defined()) {
    at::Tensor scale = at::tensor(temperatures).to(raw.device()).unsqueeze(1);
    scores = raw / scale - exponential.log();
  } else if (!general.empty()) {
    scores = raw.clone();
  }
  for (int64_t i : general) {
    scores[i].copy_(continuations[static_cast<size_t>(i)]->sampler_.Scores(raw[i]));
  }
  at::Tensor chosen = scores.argmax(1).to(at::kCPU);
  const int64_t* tokens = chosen.data_ptr<int64_t>();
  std::vector<Update> updates;
  for (int64_t i = 0; i < n; ++i) {
    Continuation& c = *continuations[static_cast<size_t>(i)];
    const int32_t token = static_cast<int32_t>(tokens[i]);
    TokenLogprob logprob;
    if (c.params_.logprobs) logprob = ComputeLogprob(raw[i], token, c.params_.top_logprobs);
    updates.push_back(c.Accept(token, logprob));
  }
  return updates;
}

bool Continuation::ArgmaxSuffices() const {
  return params_.greedy() && !params_.logprobs && params_.repetition_penalty == 1.0;
}

Continuation::Update Continuation::Accept(int32_t token, const TokenLogprob& logprob) {
  Update u;
  u.token = token;
  u.logprob = logprob;
  sampler_.Append(u.token);
  result_.token_ids.push_back(u.token);
  if (params_.logprobs) result_.logprobs.push_back(u.logprob);
  bool stop_id = std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), u.token) !=
                 params_.stop_token_ids.end();
  if (decoder_ && !stop_id) full_text_ += decoder_->Add(u.token);
  // A stop string ends the text before it.
  size_t search_from = emitted_;
  for (const std::string& s : params_.stop) {
    size_t from = search_from >= s.size() ? search_from - s.size() + 1 : 0;
    size_t at = full_text_.find(s, from);
    if (at != std::string::npos) {
      full_text_.resize(at);
      finished_ = true;
      result_.finish_reason = FinishReason::kStop;
    }
  }
  if (!finished_ && stop_id) {
    finished_ = true;
    result_.finish_reason = FinishReason::kStop;
  }
  if (!finished_ && static_cast<int>(result_.token_ids.size()) >= params_.max_new_tokens) {
    finished_ = true;
    result_.finish_reason = FinishReason::kLength;
  }
  if (finished_ && decoder_ && result_.finish_reason == FinishReason::kLength) {
    full_text_ += decoder_->Flush();
  }
  u.text = TakeSafeText(finished_);
  result_.usage.completion_tokens = static_cast<int64_t>(result_.token_ids.size());
  return u;
}

void Continuation::Finish(FinishReason reason) {
  if (finished_) return;
  finished_ = true;
  result_.finish_reason = reason;
  TakeSafeText(true);
}

std::string Continuation::TakeSafeText(bool final) {
  size_t safe = full_text_.size();
  if (!final) {
    // Hold back the longest suffix that is a prefix of some stop string.
    for (const std::string& s : params_.stop) {
      for (size_t k = std::min(s.size() - 1, full_text_.size()); k > 0; --k) {
        if (full_text_.compare(full_text_.size() - k, k, s, 0, k) == 0) {
          safe = std::min(safe, full_text_.size() - k);
          break;
        }
      }
    }
  }
  safe = std::max(safe, emitted_);
  std::string piece = full_text_.substr(emitted_, safe - emitted_);
  emitted_ = safe;
  result_.text = full_text_.substr(0, emitted_);
  return piece;
}

}  // namespace vlmd
