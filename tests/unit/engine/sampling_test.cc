// Sampling, stop handling and log-probabilities on hand-made logits.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <memory>
#include <set>

#include "core/engine/continuation.h"
#include "core/engine/sampler.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

SamplingParams Greedy() {
  SamplingParams p;
  p.max_new_tokens = 8;
  p.temperature = 0;
  return p;
}

TEST(ResolveSampling, RangesAndDefaults) {
  GenerationConfig gen;
  gen.eos_token_ids = {7};
  SamplingRequest r;
  auto p = ResolveSampling(r, gen, 100);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->greedy());
  EXPECT_EQ(p->stop_token_ids, (std::vector<int32_t>{7}));
  r.temperature = -0.5;
  EXPECT_EQ(ResolveSampling(r, gen, 100).status().code(), absl::StatusCode::kInvalidArgument);
  r.temperature = 0.7;
  r.top_p = 1.5;
  auto bad = ResolveSampling(r, gen, 100);
  EXPECT_NE(std::string(bad.status().message()).find("top_p"), std::string::npos);
  r.top_p = 0.9;
  r.max_new_tokens = 101;
  EXPECT_NE(std::string(ResolveSampling(r, gen, 100).status().message()).find("max_new_tokens"),
            std::string::npos);
  // do_sample defaults from generation_config apply only when the request sets no temperature.
  SamplingRequest plain;
  gen.do_sample = true;
  gen.temperature = 0.01;
  gen.top_k = 1;
  auto d = ResolveSampling(plain, gen, 100);
  ASSERT_TRUE(d.ok());
  EXPECT_DOUBLE_EQ(d->temperature, 0.01);
  EXPECT_EQ(d->top_k, 1);
}

TEST(Sampler, GreedyWithRepetitionPenaltyAsTransformers) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0;
  // Token 1 was in the prompt: its positive logit is divided by 2 (3.0 -> 1.5 < 2.0).
  Sampler s(p, {1});
  at::Tensor logits = at::tensor({0.0f, 3.0f, 2.0f, -1.0f});
  EXPECT_EQ(s.Next(logits, nullptr), 2);
  // A negative logit is multiplied: -1 -> -2 stays last.
  Sampler s2(p, {3});
  EXPECT_EQ(s2.Next(at::tensor({-5.0f, -3.0f, -4.0f, -1.0f}), nullptr), 3);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  SamplingParams p;
  p.temperature = 1.0;
  p.top_k = 1;
  p.seed = 3;
  Sampler s(p, {});
  at::Tensor logits = at::tensor({0.1f, 0.2f, 0.9f, 0.3f});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.Next(logits, nullptr), 2);
  p.top_k = 0;
  p.top_p = 0.001;
  Sampler t(p, {});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.Next(logits, nullptr), 2);
}

TEST(Sampler, SeededSamplingIsReproducibleAndFollowsProbabilities) {
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 42;
  at::Tensor logits = at::tensor({std::log(0.7f), std::log(0.2f), std::log(0.1f)});
  Sampler a(p, {}), b(p, {});
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i) {
    int32_t x = a.Next(logits, nullptr);
    EXPECT_EQ(x, b.Next(logits, nullptr));
    ++counts[x];
  }
  EXPECT_NEAR(counts[0] / 3000.0, 0.7, 0.04);
  EXPECT_NEAR(counts[2] / 3000.0, 0.1, 0.03);
}

TEST(Sampler, LogprobsAreLogSoftmaxOfRawLogits) {
  TokenLogprob lp = ComputeLogprob(at::tensor({1.0f, 2.0f, 3.0f}), 1, 2);
  double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(lp.logprob, 2.0 - z, 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].first, 2);
  EXPECT_NEAR(lp.top[0].second, 3.0 - z, 1e-6);
}

// Drives a Continuation with logits that force a given token sequence.
std::vector<int32_t> Drive(Continuation& c, const std::vector<int32_t>& forced, int vocab) {
  std::vector<int32_t> out;
  for (int32_t t : forced) {
    if (c.finished()) break;
    at::Tensor logits = at::zeros({vocab});
    logits[t] = 10.0f;
    out.push_back(c.Step(logits).token);
  }
  return out;
}

TEST(Continuation, StopsOnStopIdAndLength) {
  SamplingParams p = Greedy();
  p.stop_token_ids = {5};
  p.max_new_tokens = 3;
  Continuation a(p, {}, nullptr);
  EXPECT_EQ(Drive(a, {1, 5, 2}, 8), (std::vector<int32_t>{1, 5}));
  EXPECT_EQ(a.result().finish_reason, FinishReason::kStop);
  Continuation b(p, {}, nullptr);
  EXPECT_EQ(Drive(b, {1, 2, 3, 4}, 8), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(b.result().finish_reason, FinishReason::kLength);
  EXPECT_EQ(b.result().usage.completion_tokens, 3);
}

}  // namespace
}  // namespace vlmd

namespace vlmd {
namespace {

// The batched step must draw exactly what each sequence draws on its own: greedy, penalised
// greedy, temperature-only (batched noise), top-k, top-p and log-probabilities mixed.
TEST(Continuation, StepAllDrawsWhatStepDrawsRowByRow) {
  std::vector<SamplingParams> kinds(6);
  kinds[1].repetition_penalty = 1.3;
  kinds[2].temperature = 0.7;
  kinds[2].seed = 11;
  kinds[3].temperature = 1.0;
  kinds[3].top_k = 5;
  kinds[3].seed = 12;
  kinds[4].temperature = 1.2;
  kinds[4].top_p = 0.8;
  kinds[4].seed = 13;
  kinds[5].temperature = 0.9;
  kinds[5].seed = 14;
  kinds[5].logprobs = true;
  kinds[5].top_logprobs = 2;
  for (SamplingParams& p : kinds) p.max_new_tokens = 100;
  std::vector<std::unique_ptr<Continuation>> alone, batched;
  std::vector<Continuation*> batch;
  for (const SamplingParams& p : kinds) {
    alone.push_back(std::make_unique<Continuation>(p, std::vector<int32_t>{1, 2}, nullptr));
    batched.push_back(std::make_unique<Continuation>(p, std::vector<int32_t>{1, 2}, nullptr));
    batch.push_back(batched.back().get());
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  std::set<int32_t> sampled_tokens;
  for (int step = 0; step < 30; ++step) {
    at::Tensor logits = at::randn({static_cast<int64_t>(kinds.size()), 50}, gen) * 2;
    std::vector<Continuation::Update> all = Continuation::StepAll(batch, logits);
    ASSERT_EQ(all.size(), kinds.size());
    for (size_t i = 0; i < kinds.size(); ++i) {
      Continuation::Update one = alone[i]->Step(logits[static_cast<int64_t>(i)]);
      EXPECT_EQ(all[i].token, one.token) << "row " << i << " step " << step;
      EXPECT_FLOAT_EQ(all[i].logprob.logprob, one.logprob.logprob);
      if (i == 2) sampled_tokens.insert(one.token);
    }
  }
  EXPECT_GT(sampled_tokens.size(), 5u);  // the temperature row really samples
  EXPECT_EQ(alone[5]->result().logprobs.size(), 30u);
}

}  // namespace
}  // namespace vlmd
