// EvalService on the tiny model on CPU: predictions checked one by one against api::Generate
// (the offline `vlmd generate` path) for the same requests, scores recomputed from the results
// file, teacher-forced numbers present, and the error statuses of bad requests.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>

#include "core/api/eval.h"
#include "core/api/inference.h"
#include "core/api/offline.h"
#include "core/eval/eval_items.h"
#include "core/eval/metrics.h"
#include "core/train/dataset.h"
#include "tests/unit/eval/eval_test_util.h"

namespace vlmd {
namespace {

using eval_testing::ReadJsonl;
using eval_testing::TinyWorld;
using json = nlohmann::json;

constexpr int kMaxNewTokens = 6;

// A data set in four SWIFT layouts: messages with a system turn, query/response with <image>,
// text only, multi-turn history, ShareGPT conversations.
std::string WriteDataset(const std::string& dir) {
  const std::string red = eval_testing::WritePng(dir + "/red.png", 56, 56, 200, 10, 10);
  const std::string wide = eval_testing::WritePng(dir + "/wide.png", 112, 56, 10, 150, 30);
  std::vector<json> rows = {
      {{"messages",
        {{{"role", "system"}, {"content", "You read formulas."}},
         {{"role", "user"}, {"content", "<image>Using LaTeX to perform OCR on the image."}},
         {{"role", "assistant"}, {"content", "x ^ { 2 }"}}}},
       {"images", {red}}},
      {{"query", "<image>What is shown?"}, {"response", "\\frac { a } { b }"}, {"images", {wide}}},
      {{"query", "Say hi"}, {"response", "hi 😀"}},
      {{"query", "and now?"},
       {"response", "数学 公式"},
       {"history", json::array({json::array({"first question", "first answer"})})}},
      {{"conversations",
        {{{"from", "human"}, {"value", "<image>Read it."}}, {{"from", "gpt"}, {"value", "y"}}}},
       {"images", {red}}},
  };
  const std::string path = dir + "/data.jsonl";
  eval_testing::WriteJsonl(path, rows);
  return path;
}

// The offline request of an item: its prompt turns, images as path parts.
std::string WriteRequest(const eval::EvalItem& item, const std::string& path) {
  json messages = json::array();
  size_t image = 0;
  for (const ChatMessage& m : item.prompt) {
    json parts = json::array();
    for (const ContentPart& p : m.content) {
      if (p.type == ContentPart::Type::kImage) {
        parts.push_back({{"type", "image"}, {"image", item.images[image++].path}});
      } else {
        parts.push_back({{"type", "text"}, {"text", p.text}});
      }
    }
    messages.push_back({{"role", m.role}, {"content", parts}});
  }
  eval_testing::WriteText(path, json{{"messages", messages}}.dump());
  return path;
}

class EvalServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TinyWorld& world = TinyWorld::Get();
    dir_ = new std::string(world.NewDir("service"));
    data_ = new std::string(WriteDataset(*dir_));
    api::InferenceConfig config;
    config.models = {{"tiny", world.model_dir(), "cpu", "auto"}};
    config.limits.max_running = 4;
    config.images.allowed_roots = std::vector<std::string>{world.root()};
    auto inference = api::InferenceService::Create(config, nullptr);
    ASSERT_TRUE(inference.ok()) << inference.status();
    inference_ = inference->release();
  }
  static void TearDownTestSuite() {
    inference_->Shutdown(std::chrono::milliseconds(0));
    delete inference_;
  }
  std::unique_ptr<api::EvalService> Service() {
    return api::EvalService::Create(inference_, nullptr, {TinyWorld::Get().root()},
                                    *dir_ + "/state");
  }
  api::EvalRequest Request() {
    api::EvalRequest r;
    r.datasets = {*data_};
    r.sampling.max_new_tokens = kMaxNewTokens;
    r.concurrency = 3;
    return r;
  }

  static std::string* dir_;
  static std::string* data_;
  static api::InferenceService* inference_;
};
std::string* EvalServiceTest::dir_ = nullptr;
std::string* EvalServiceTest::data_ = nullptr;
api::InferenceService* EvalServiceTest::inference_ = nullptr;

TEST_F(EvalServiceTest, PredictionsEqualOfflineGenerateAndScoresAddUp) {
  api::EvalRequest request = Request();
  request.output_dir = *dir_ + "/out";
  std::vector<int64_t> seen;
  int nulls = 0;
  auto summary = Service()->Evaluate(
      request, [&](int64_t done, int64_t total, const api::EvalSampleResult* r) {
        EXPECT_EQ(total, 5);
        if (r == nullptr)
          ++nulls;
        else
          seen.push_back(done);
        return true;
      });
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_GT(nulls, 0);  // the teacher-forced pass asks between batches
  EXPECT_EQ(summary->samples, 5);
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->results_path, *dir_ + "/out/results.jsonl");
  ASSERT_TRUE(std::filesystem::exists(*dir_ + "/out/summary.json"));

  auto read = ReadDatasetFile(*data_, DatasetReadOptions());
  ASSERT_TRUE(read.ok()) << read.status();
  auto items = eval::MakeEvalItems(read->samples);
  ASSERT_TRUE(items.ok()) << items.status();
  std::vector<json> lines = ReadJsonl(summary->results_path);
  ASSERT_EQ(lines.size(), 5u);
  api::ModelRunOptions offline;
  offline.model_dir = TinyWorld::Get().model_dir();
  SamplingRequest greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = kMaxNewTokens;
  double exact = 0, chars = 0, tokens = 0;
  eval::BleuStats bleu;
  for (size_t i = 0; i < lines.size(); ++i) {
    const json& line = lines[i];
    const eval::EvalItem& item = (*items)[i];
    EXPECT_EQ(line["source"], *data_ + ":" + std::to_string(i + 1));
    EXPECT_EQ(line["reference"], item.reference);
    EXPECT_EQ(line["query"], item.query);
    auto generated = api::Generate(offline, WriteRequest(item, *dir_ + "/req.json"), greedy);
    ASSERT_TRUE(generated.ok()) << generated.status();
    json g = json::parse(*generated);
    EXPECT_EQ(line["prediction"], g["text"]) << "sample " << i;
    EXPECT_EQ(line["completion_tokens"], g["usage"]["completion_tokens"]);
    const std::string prediction = line["prediction"];
    EXPECT_EQ(line["exact_match"], eval::ExactMatch(prediction, item.reference));
    EXPECT_DOUBLE_EQ(line["edit_distance"], eval::EditSimilarityChars(prediction, item.reference));
    EXPECT_DOUBLE_EQ(line["bleu"], eval::SentenceBleu(prediction, item.reference));
    exact += eval::ExactMatch(prediction, item.reference);
    chars += eval::EditSimilarityChars(prediction, item.reference);
    tokens += eval::EditSimilarityTokens(prediction, item.reference);
    bleu.Add(
        eval::ComputeBleuStats(eval::SplitTokens(prediction), eval::SplitTokens(item.reference)));
  }
  EXPECT_DOUBLE_EQ(summary->exact_match, exact / 5);
  EXPECT_DOUBLE_EQ(summary->edit_distance_char, chars / 5);
  EXPECT_DOUBLE_EQ(summary->edit_distance_token, tokens / 5);
  EXPECT_DOUBLE_EQ(summary->bleu, eval::CorpusBleu(bleu));
  ASSERT_TRUE(summary->eval_loss.has_value());
  EXPECT_TRUE(std::isfinite(*summary->eval_loss));
  EXPECT_GT(*summary->eval_loss, 1.0);  // a random model: about log(vocab)
  ASSERT_TRUE(summary->eval_acc.has_value());
  EXPECT_GE(*summary->eval_acc, 0.0);
  EXPECT_LE(*summary->eval_acc, 1.0);
  EXPECT_GT(summary->samples_per_second, 0);
  EXPECT_GT(summary->completion_tokens, 5);  // the predictions are not all empty
}

TEST_F(EvalServiceTest, MaxSamplesDefaultOutputDirAndNoTeacherForcing) {
  api::EvalRequest request = Request();
  request.max_samples = 2;
  request.teacher_forced = false;
  request.concurrency = 1;
  auto summary = Service()->Evaluate(request, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->samples, 2);
  EXPECT_FALSE(summary->eval_loss.has_value());
  EXPECT_EQ(summary->results_path.rfind(*dir_ + "/state/evals/eval-", 0), 0u)
      << summary->results_path;
  EXPECT_EQ(ReadJsonl(summary->results_path).size(), 2u);
}

TEST_F(EvalServiceTest, CancelFromProgress) {
  api::EvalRequest request = Request();
  request.concurrency = 2;
  auto summary = Service()->Evaluate(
      request, [](int64_t done, int64_t, const api::EvalSampleResult*) { return done < 2; });
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kCancelled) << summary.status();
  // The temporary state is gone: no adapter left behind.
  EXPECT_TRUE(inference_->ListAdapters().empty());
}

TEST_F(EvalServiceTest, BadRequests) {
  auto service = Service();
  api::EvalRequest r = Request();
  r.job_id = "sft-1";
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);  // no job service
  r.adapter = "a";
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  r = Request();
  r.adapter = "missing";
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kNotFound);
  r = Request();
  r.model = "other";
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kNotFound);
  r = Request();
  char outside[] = "/tmp/vlmd_eval_outside_XXXXXX";
  const std::string outside_dir = mkdtemp(outside);
  eval_testing::WriteText(outside_dir + "/d.jsonl", "{\"query\": \"q\", \"response\": \"r\"}\n");
  r.datasets = {outside_dir + "/d.jsonl"};
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kPermissionDenied);
  std::filesystem::remove_all(outside_dir);
  r = Request();
  r.output_dir = "/tmp-outside-roots/x";
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kPermissionDenied);
  r = Request();
  r.datasets.clear();
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  r = Request();
  r.concurrency = 0;
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  r = Request();
  r.sampling.temperature = -1;
  EXPECT_EQ(service->Evaluate(r, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  r = Request();
  r.sampling.max_new_tokens = 5000;  // over the engine's max_new_tokens (4096): every request
  auto refused = service->Evaluate(r, nullptr).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(refused.message()).find("the first 5 requests were refused"),
            std::string::npos)
      << refused;
  const std::string bad = *dir_ + "/bad.jsonl";
  eval_testing::WriteText(bad, "{\"query\": \"q\"}\nnot json\n");
  r = Request();
  r.datasets = {bad};
  auto status = service->Evaluate(r, nullptr).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("bad.jsonl:2"), std::string::npos) << status;
}

TEST_F(EvalServiceTest, RefusedSampleIsRecordedAndScoredEmpty) {
  // A prompt over the engine's max_prompt_tokens (8192) fails only its own sample.
  const std::string dir = TinyWorld::Get().NewDir("refused");
  std::string long_query;
  for (int i = 0; i < 9000; ++i) long_query += " a";
  const std::string data = dir + "/d.jsonl";
  eval_testing::WriteJsonl(
      data, {{{"query", long_query}, {"response", "r"}}, {{"query", "q2"}, {"response", "r2"}}});
  api::EvalRequest r = Request();
  r.datasets = {data};
  r.teacher_forced = false;
  auto summary = Service()->Evaluate(r, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->samples, 2);
  EXPECT_EQ(summary->failed, 1);
  std::vector<json> lines = ReadJsonl(summary->results_path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["finish_reason"], "error");
  EXPECT_EQ(lines[0]["prediction"], "");
  EXPECT_NE(lines[0]["error"].get<std::string>().find("INVALID_ARGUMENT"), std::string::npos);
  EXPECT_EQ(lines[0]["exact_match"], false);
  EXPECT_FALSE(lines[1].contains("error"));
}

}  // namespace
}  // namespace vlmd
