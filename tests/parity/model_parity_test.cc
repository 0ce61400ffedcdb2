// Qwen2-VL parity against Hugging Face transformers 5.17: for every case of
// tests/fixtures/parity/cases.json (made by tests/reference/make_fixtures.py), the same request
// through vlmd gives the same input ids, grids, positions and pixel values (exactly), image
// embeddings and logits (within the tolerance below) and the same greedy tokens.
//
// Tolerances. float32 on the CPU: both sides compute the same float32 graph, but with
// different GEMM kernels (OpenBLAS here, MKL/oneDNN in the PyTorch wheel) and, for the patch
// embedding, a GEMM instead of a Conv3d; every reduction of length K then differs by a few
// ulps (~K * 6e-8 relative in the worst case, far less on average). Over 2-5 tiny layers the
// measured error is at most 6.3e-7 of the largest logit (all cases, 2026-11-25); we allow
// 1e-5 of max(1, |logit|max), 15x that, for other BLAS builds.
// bfloat16 (VLMD_TEST_DTYPE=bfloat16, GPU machine) against the float32 reference: bf16 keeps
// 8 mantissa bits (relative step 2^-8 = 0.4%), so logits may differ by a few percent of their
// range; we require cosine similarity >= 0.999 and max error <= 5% of max(1, |logit|max).
#include <map>
#include <memory>

#include "core/engine/continuation.h"
#include "core/engine/model_bundle.h"
#include "core/engine/step.h"
#include "gtest/gtest.h"
#include "tests/parity/fixtures.h"

namespace vlmd {
namespace {

using nlohmann::json;
using testing::Compare;
using testing::Diff;
using testing::FixturesDir;

std::shared_ptr<const ModelBundle> LoadModel(const std::string& rel) {
  static std::map<std::string, std::shared_ptr<const ModelBundle>> cache;
  auto it = cache.find(rel);
  if (it != cache.end()) return it->second;
  ModelOptions options;
  options.device = testing::TestDevice();
  options.dtype = testing::TestDtype();
  auto bundle = ModelBundle::Load(FixturesDir() + "/" + rel, options, "");
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  if (!bundle.ok()) return nullptr;
  return cache[rel] = *bundle;
}

void ExpectClose(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  Diff d = Compare(actual, expected);
  double scale = std::max(1.0, d.ref_max);
  if (testing::LowPrecision()) {
    EXPECT_GE(d.cosine, 0.999) << what;
    EXPECT_LE(d.max_abs, 0.05 * scale) << what << " max|diff| " << d.max_abs;
  } else {
    EXPECT_LE(d.max_abs, 1e-5 * scale) << what << " max|diff| " << d.max_abs << " of "
                                        << d.ref_max;
  }
  std::printf("  %-14s max|diff| %.3g  max|ref| %.3g  cos %.7f\n", what.c_str(), d.max_abs,
              d.ref_max, d.cosine);
}

at::Tensor Ids(const std::vector<int32_t>& ids) {
  return at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong);
}

class ModelParity : public ::testing::TestWithParam<json> {};

TEST_P(ModelParity, MatchesTransformers) {
  const json& c = GetParam();
  SCOPED_TRACE(c["name"].get<std::string>());
  auto bundle = LoadModel(c["model"]);
  ASSERT_NE(bundle, nullptr);
  const Qwen2VL& model = *bundle->model;
  auto ref = testing::LoadTensors(FixturesDir() + "/" + c["tensors"].get<std::string>());
  auto input = ParsePromptJson(c["request"].dump(), "request", FixturesDir());
  ASSERT_TRUE(input.ok()) << input.status();
  auto prompt = PreparePrompt(*input, bundle->prompt_context(), ImagePolicy());
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  ASSERT_TRUE(at::equal(Ids(prompt->ids), ref["input_ids"])) << "input_ids differ";
  ImageBatch images = ToImageBatch(prompt->images);
  if (ref.count("pixel_values")) {
    std::vector<int64_t> grid;
    for (const GridThw& g : images.grids) grid.insert(grid.end(), g.begin(), g.end());
    EXPECT_TRUE(at::equal(at::tensor(grid, at::kLong).view({-1, 3}), ref["image_grid_thw"]));
    Diff d = Compare(images.pixel_values, ref["pixel_values"]);
    EXPECT_LE(d.max_abs, 1e-6) << "pixel_values";
  }
  c10::InferenceMode guard;
  int64_t delta = 0;
  StepSequence seq = PrefillSequence(model, prompt->ids, &images, &delta);
  at::Tensor pos = at::stack({at::tensor(seq.pos_t), at::tensor(seq.pos_h), at::tensor(seq.pos_w)});
  EXPECT_TRUE(at::equal(pos, ref["position_ids"])) << "position_ids differ";
  EXPECT_EQ(delta, ref["rope_delta"][0].item<int64_t>());
  if (ref.count("image_embeds")) {
    ExpectClose("image_embeds", model.EncodeImages(images.pixel_values, images.grids),
                ref["image_embeds"]);
  }
  at::Tensor logits = model.Logits(RunStep(model, {seq})).to(at::kFloat);
  if (ref.count("logits_rows")) logits = logits.index_select(0, ref["logits_rows"].to(model.device()));
  ExpectClose("logits", logits, ref["logits"]);

  // Greedy continuation with log-probabilities, through the KV-cache path.
  const json& g = c["greedy"];
  SamplingRequest request;
  request.max_new_tokens = c["max_new_tokens"].get<int>();
  request.temperature = 0.0;
  request.top_logprobs = c["top_logprobs"].get<int>();
  auto params = ResolveSampling(request, bundle->generation, 1 << 16);
  ASSERT_TRUE(params.ok());
  params->stop_token_ids = g["eos_token_ids"].get<std::vector<int32_t>>();
  KvCache cache(model.config().text, prompt->ids.size() + params->max_new_tokens, model.dtype(),
                model.device());
  Continuation cont(*params, prompt->ids, nullptr);
  seq.cache = &cache;
  int64_t past = 0;
  while (!cont.finished()) {
    at::Tensor hidden = RunStep(model, {seq});
    past += static_cast<int64_t>(seq.ids.size());
    auto u = cont.Step(model.Logits(hidden.narrow(0, hidden.size(0) - 1, 1))[0]);
    seq = DecodeSequence(u.token, past, delta);
    seq.cache = &cache;
  }
  const auto& expected = g["token_ids"];
  std::vector<int32_t> want = expected.get<std::vector<int32_t>>();
  if (!testing::LowPrecision()) {
    EXPECT_EQ(cont.tokens(), want) << "greedy tokens differ (min top-2 gap "
                                   << g.value("min_top2_logit_gap", 0.0) << ")";
    EXPECT_EQ(FinishReasonName(cont.result().finish_reason), g["finish_reason"].get<std::string>());
    for (size_t i = 0; i < std::min(want.size(), cont.result().logprobs.size()); ++i) {
      EXPECT_NEAR(cont.result().logprobs[i].logprob, g["logprobs"][i]["logprob"].get<double>(), 1e-4);
      const auto& top = g["logprobs"][i]["top"];
      for (size_t k = 0; k < top.size() && k < cont.result().logprobs[i].top.size(); ++k) {
        EXPECT_NEAR(cont.result().logprobs[i].top[k].second, top[k]["logprob"].get<double>(), 1e-4);
      }
    }
  } else {
    size_t same = 0;
    while (same < want.size() && same < cont.tokens().size() && want[same] == cont.tokens()[same]) ++same;
    std::printf("  greedy: %zu of %zu leading tokens equal in %s\n", same, want.size(),
                testing::TestDtype().c_str());
  }
}

std::vector<json> Cases() {
  json all = testing::ReadJsonFile(FixturesDir() + "/parity/cases.json");
  std::vector<json> out;
  if (all.is_object() && all.contains("cases")) {
    for (const json& c : all["cases"]) out.push_back(c);
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<json>& info) {
  return info.param["name"].get<std::string>();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelParity, ::testing::ValuesIn(Cases()), CaseName);

TEST(ModelParityFixtures, Present) { EXPECT_GE(Cases().size(), 6u); }

}  // namespace
}  // namespace vlmd
