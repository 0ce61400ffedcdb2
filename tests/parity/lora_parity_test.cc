// LoRA parity against PEFT (tests/fixtures/lora, made by tests/reference/make_fixtures.py):
// base + adapter logits equal PEFT's, for an LLM-only adapter and for one that also wraps the
// vision tower and merger with rsLoRA and rank/alpha patterns; the merged checkpoint written
// by transformers loads in vlmd with the same logits; vlmd's own merge equals the unmerged
// adapter. Tolerances as in model_parity_test.cc.
#include <unistd.h>

#include "core/engine/model_bundle.h"
#include "core/engine/step.h"
#include "core/train/merge.h"
#include "gtest/gtest.h"
#include "tests/parity/fixtures.h"

namespace vlmd {
namespace {

using nlohmann::json;
using testing::FixturesDir;

struct Loaded {
  std::shared_ptr<const ModelBundle> bundle;
  PreparedPrompt prompt;
  ImageBatch images;
};

Loaded Load(const std::string& model_rel, const json& request) {
  Loaded l;
  ModelOptions options;
  options.device = testing::TestDevice();
  options.dtype = testing::TestDtype();
  auto bundle = ModelBundle::Load(FixturesDir() + "/" + model_rel, options, "");
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  if (!bundle.ok()) return l;
  l.bundle = *bundle;
  auto input = ParsePromptJson(request.dump(), "request", FixturesDir());
  EXPECT_TRUE(input.ok()) << input.status();
  auto prompt = PreparePrompt(*input, l.bundle->prompt_context(), ImagePolicy());
  EXPECT_TRUE(prompt.ok()) << prompt.status();
  l.prompt = *prompt;
  l.images = ToImageBatch(l.prompt.images);
  return l;
}

at::Tensor Logits(const Qwen2VL& model, const Loaded& l, const LoraAdapter* adapter,
                  const std::map<std::string, at::Tensor>& ref) {
  c10::InferenceMode guard;
  int64_t delta = 0;
  StepSequence seq = PrefillSequence(model, l.prompt.ids, &l.images, &delta);
  seq.adapter = adapter;
  at::Tensor logits = model.Logits(RunStep(model, {seq})).to(at::kFloat);
  if (ref.count("logits_rows")) logits = logits.index_select(0, ref.at("logits_rows").to(model.device()));
  return logits;
}

void ExpectClose(const std::string& what, const at::Tensor& a, const at::Tensor& b) {
  testing::Diff d = testing::Compare(a, b);
  double scale = std::max(1.0, d.ref_max);
  if (testing::LowPrecision()) {
    EXPECT_GE(d.cosine, 0.999) << what;
    EXPECT_LE(d.max_abs, 0.05 * scale) << what;
  } else {
    EXPECT_LE(d.max_abs, 1e-5 * scale) << what << " max|diff| " << d.max_abs;
  }
  std::printf("  %-22s max|diff| %.3g  max|ref| %.3g  cos %.7f\n", what.c_str(), d.max_abs,
              d.ref_max, d.cosine);
}

class LoraParity : public ::testing::TestWithParam<json> {};

TEST_P(LoraParity, MatchesPeft) {
  const json& c = GetParam();
  SCOPED_TRACE(c["name"].get<std::string>());
  Loaded l = Load(c["model"], c["request"]);
  ASSERT_NE(l.bundle, nullptr);
  const Qwen2VL& model = *l.bundle->model;
  auto ref = testing::LoadTensors(FixturesDir() + "/" + c["tensors"].get<std::string>());
  ASSERT_TRUE(at::equal(at::tensor(std::vector<int64_t>(l.prompt.ids.begin(), l.prompt.ids.end())),
                        ref["input_ids"]));
  auto adapter = LoraAdapter::Load(FixturesDir() + "/" + c["adapter"].get<std::string>(),
                                   model.weights(), at::kFloat, model.device());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  at::Tensor with_adapter = Logits(model, l, adapter->get(), ref);
  ExpectClose("adapter logits", with_adapter, ref["logits"]);
  // The adapter must change the output: the test would not notice a no-op otherwise.
  EXPECT_GT(testing::Compare(Logits(model, l, nullptr, ref), ref["logits"]).max_abs, 1e-3);

  // vlmd's merge (W + B A s) gives the unmerged result.
  ModelWeights merged = model.weights();
  for (auto& [name, w] : MergedWeights(**adapter, model.weights())) {
    LinearsByName(&merged).at(name)->weight = w;
  }
  Qwen2VL merged_model(model.config(), merged, model.dtype(), model.device(), false);
  ExpectClose("vlmd merge", Logits(merged_model, l, nullptr, ref), ref["logits"]);

  if (c.contains("merged_model")) {  // the checkpoint transformers wrote after merge_and_unload
    Loaded m = Load(c["merged_model"], c["request"]);
    ASSERT_NE(m.bundle, nullptr);
    ExpectClose("HF merged checkpoint", Logits(*m.bundle->model, m, nullptr, ref),
                ref["merged_logits"]);
    // `vlmd merge` (streamed to disk) equals transformers' merge_and_unload + save_pretrained.
    char tmpl[] = "/tmp/vlmd_merge_XXXXXX";
    std::string out = std::string(mkdtemp(tmpl)) + "/merged";
    MergeOptions options;
    options.base_dir = FixturesDir() + "/" + c["model"].get<std::string>();
    options.adapter_dir = FixturesDir() + "/" + c["adapter"].get<std::string>();
    options.output_dir = out;
    options.dtype = "float32";
    auto stats = MergeAdapter(options);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->merged_modules, 14);
    ModelOptions mo;
    mo.device = testing::TestDevice();
    mo.dtype = testing::TestDtype();
    auto merged = ModelBundle::Load(out, mo, "");
    ASSERT_TRUE(merged.ok()) << merged.status();
    ExpectClose("vlmd merge on disk", Logits(*(*merged)->model, l, nullptr, ref),
                ref["merged_logits"]);
    std::system(("rm -rf " + out.substr(0, out.size() - 7)).c_str());
  }
}

std::vector<json> Cases() {
  json all = testing::ReadJsonFile(FixturesDir() + "/lora/cases.json");
  std::vector<json> out;
  if (all.is_object() && all.contains("cases")) {
    for (const json& c : all["cases"]) out.push_back(c);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraParity, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<json>& info) {
                           return info.param["name"].get<std::string>();
                         });

TEST(LoraParityFixtures, Present) { EXPECT_GE(Cases().size(), 4u); }

}  // namespace
}  // namespace vlmd
