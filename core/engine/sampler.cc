#include "core/engine/sampler.h"

#include <limits>

#include "core/model/torch_compat.h"

namespace vlmd {

Sampler::Sampler(const SamplingParams& params, const std::vector<int32_t>& context)
    : params_(params), seen_(context.begin(), context.end()) {}

at::Generator& Sampler::GeneratorFor(const at::Device& device) {
  at::Generator& gen = device.is_cuda() ? device_generator_ : cpu_generator_;
  if (!gen.defined()) gen = compat::MakeGenerator(device, params_.seed);
  return gen;
}

void Sampler::Append(int32_t token) { seen_.insert(token); }

at::Tensor Sampler::Process(at::Tensor scores) const {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (params_.repetition_penalty != 1.0 && !seen_.empty()) {
    std::vector<int64_t> ids(seen_.begin(), seen_.end());
    at::Tensor index = at::tensor(ids, at::kLong).to(scores.device());
    at::Tensor s = scores.index_select(0, index);
    s = at::where(s < 0, s * params_.repetition_penalty, s / params_.repetition_penalty);
    scores = scores.index_copy(0, index, s);
  }
  if (params_.greedy()) return scores;
  scores = scores / params_.temperature;
  if (params_.top_k > 0 && params_.top_k < scores.size(0)) {
    at::Tensor kth = std::get<0>(at::topk(scores, params_.top_k)).select(0, params_.top_k - 1);
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (params_.top_p < 1.0) {
    auto sorted = at::sort(scores, /*dim=*/0, /*descending=*/false);
    at::Tensor cumulative = at::softmax(std::get<0>(sorted), 0).cumsum(0);
    at::Tensor remove_sorted = cumulative <= (1.0 - params_.top_p);
    remove_sorted.select(0, remove_sorted.size(0) - 1).fill_(false);  // keep at least one
    at::Tensor remove =
        at::zeros_like(remove_sorted).scatter(0, std::get<1>(sorted), remove_sorted);
    scores = scores.masked_fill(remove, neg_inf);
  }
  return scores;
}

bool Sampler::TemperatureOnly() const {
  return !params_.greedy() && params_.repetition_penalty == 1.0 && params_.top_k == 0 &&
         params_.top_p >= 1.0;
}

bool Sampler::RawArgmax() const { return params_.greedy() && params_.repetition_penalty == 1.0; }

void Sampler::DrawExponential(at::Tensor out) { out.exponential_(1.0, GeneratorFor(out.device())); }

at::Tensor Sampler::Scores(const at::Tensor& logits) {
  at::Tensor scores = Process(logits.to(at::kFloat));
  if (params_.greedy()) return scores;
  at::Tensor exponential = at::empty_like(scores);
  DrawExponential(exponential);
  return scores - exponential.log();
}

int32_t Sampler::Next(const at::Tensor& logits, TokenLogprob* logprob) {
  // Greedy decoding and sampling run where the logits are (no 600 KB copy to the host).
  at::Tensor raw = logits.to(at::kFloat);
  const int32_t token = static_cast<int32_t>(Scores(raw).argmax().item<int64_t>());
  if (logprob != nullptr && params_.logprobs) {
    *logprob = ComputeLogprob(raw, token, params_.top_logprobs);
  }
  return token;
}

TokenLogprob ComputeLogprob(const at::Tensor& logits, int32_t token, int k) {
  at::Tensor lp = at::log_softmax(logits.to(at::kFloat), 0);
  TokenLogprob out;
  out.token_id = token;
  out.logprob = lp[token].item<float>();
  if (k > 0) {
    auto top = at::topk(lp, std::min<int64_t>(k, lp.size(0)));
    at::Tensor values = std::get<0>(top).to(at::kCPU), indices = std::get<1>(top).to(at::kCPU);
    for (int64_t i = 0; i < values.size(0); ++i) {
      out.top.emplace_back(static_cast<int32_t>(indices[i].item<int64_t>()),
                           values[i].item<float>());
    }
  }
  return out;
}

}  // namespace vlmd
