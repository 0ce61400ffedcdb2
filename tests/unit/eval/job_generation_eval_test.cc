// Generation eval inside a training job: the real worker (api::RunTrainWorker) on a tiny job
// with predict_with_generate reports exact_match / edit_distance / bleu in logging.jsonl and
// TensorBoard and picks the best checkpoint by the named metric. Then the EvalService
// evaluates that job's best checkpoint on the job's own validation split (rebuilt from
// job.json): its eval_loss/eval_acc equal the trainer's at that step and its predictions (the
// serving engine's) equal the worker's (batched RunStep decoding).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/api/eval.h"
#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/api/offline.h"
#include "core/api/worker.h"
#include "core/train/tensorboard.h"
#include "tests/unit/eval/eval_test_util.h"

namespace vlmd {
namespace {

using eval_testing::ReadJsonl;
using eval_testing::TinyWorld;
using json = nlohmann::json;

constexpr int kSamples = 10;
constexpr int kVal = 3;  // max(int(10 * 0.3), 1)

// Answers GetJob for one job directory; everything else is unused here.
class OneJob : public api::JobService {
 public:
  explicit OneJob(api::JobStatus status) : status_(std::move(status)) {}
  StatusOr<api::JobStatus> StartSftJob(JobSpec) override { return absl::UnimplementedError(""); }
  StatusOr<api::JobStatus> GetJob(const std::string& id) const override {
    if (id != status_.id) return absl::NotFoundError("unknown job " + id);
    return status_;
  }
  std::vector<api::JobStatus> ListJobs(std::optional<api::JobState>) const override {
    return {status_};
  }
  StatusOr<api::JobStatus> CancelJob(const std::string&) override {
    return absl::UnimplementedError("");
  }
  StatusOr<std::unique_ptr<Watch>> WatchJob(const std::string&, int64_t,
                                            std::function<bool(const api::JobEvent&)>) override {
    return absl::UnimplementedError("");
  }
  StatusOr<api::MergeResult> MergeLora(const api::MergeRequest&) override {
    return absl::UnimplementedError("");
  }
  api::JobStats Stats() const override { return {}; }
  void Shutdown(bool) override {}

 private:
  api::JobStatus status_;
};

std::string WriteJob(const std::string& dir) {
  std::vector<json> rows;
  for (int i = 0; i < kSamples; ++i) {
    std::string png = eval_testing::WritePng(dir + "/img" + std::to_string(i) + ".png",
                                             56 + 28 * (i % 2), 56, 20 * i, 100, 255 - 20 * i);
    rows.push_back({{"query", "<image>Using LaTeX to perform OCR on the image."},
                    {"response", "x ^ { 2 }"},
                    {"images", {png}}});
  }
  eval_testing::WriteJsonl(dir + "/train.jsonl", rows);
  json spec = {{"name", "evaljob"},
               {"model", TinyWorld::Get().model_dir()},
               {"output_dir", dir},
               {"dataset", {dir + "/train.jsonl"}},
               {"dataset_test_ratio", 0.3},
               {"max_length", 256},
               {"min_pixels", 3136},
               {"max_pixels", 50176},
               {"learning_rate", 0.02},
               {"lr_scheduler_type", "constant"},
               {"warmup_ratio", 0.0},
               {"lora_dropout", 0.0},
               {"batch_size", 2},
               {"gradient_accumulation_steps", 1},
               {"eval_batch_size", 2},
               {"max_steps", 6},
               {"eval_steps", 2},
               {"save_steps", 2},
               {"logging_steps", 2},
               {"save_total_limit", 0},
               {"gradient_checkpointing", false},
               {"gpus", 0},
               {"predict_with_generate", true},
               {"generation_max_new_tokens", 8},
               {"generation_batch_size", 2},
               {"metric_for_best_model", "edit_distance"}};
  eval_testing::WriteText(dir + "/job.json", spec.dump(2));
  return dir;
}

std::vector<json> EvalLines(const std::string& job_dir) {
  std::vector<json> out;
  for (const json& line : ReadJsonl(job_dir + "/logging.jsonl")) {
    if (line.contains("eval_loss")) out.push_back(line);
  }
  return out;
}

int64_t StepOf(const json& line) {
  std::string s = line["global_step/max_steps"];
  return std::stoll(s.substr(0, s.find('/')));
}

class JobGenerationEvalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    job_dir_ = new std::string(WriteJob(TinyWorld::Get().NewDir("job")));
    exit_code_ = api::RunTrainWorker(*job_dir_, eval_testing::TokenizerPath());
  }
  static std::string* job_dir_;
  static int exit_code_;
};
std::string* JobGenerationEvalTest::job_dir_ = nullptr;
int JobGenerationEvalTest::exit_code_ = -1;

TEST_F(JobGenerationEvalTest, ReportsGenerationMetricsAndPicksBestByThem) {
  ASSERT_EQ(exit_code_, api::kWorkerOk) << eval_testing::ReadText(*job_dir_ + "/progress.jsonl");
  std::vector<json> evals = EvalLines(*job_dir_);
  ASSERT_EQ(evals.size(), 3u);  // steps 2, 4, 6
  double best = -1;
  int64_t best_step = 0;
  for (const json& e : evals) {
    for (const char* key :
         {"eval_exact_match", "eval_edit_distance", "eval_edit_distance_token", "eval_bleu"}) {
      ASSERT_TRUE(e.contains(key)) << key << " missing in " << e.dump();
      EXPECT_GE(e[key].get<double>(), 0.0);
      EXPECT_LE(e[key].get<double>(), 1.0);
    }
    // greater_is_better is inferred (true) for edit_distance; ties keep the earlier one.
    if (e["eval_edit_distance"].get<double>() > best) {
      best = e["eval_edit_distance"];
      best_step = StepOf(e);
    }
    EXPECT_EQ(
        ReadJsonl(*job_dir_ + "/eval_results/step-" + std::to_string(StepOf(e)) + ".jsonl").size(),
        static_cast<size_t>(kVal));
  }
  json last = ReadJsonl(*job_dir_ + "/logging.jsonl").back();
  EXPECT_EQ(last["best_model_checkpoint"], *job_dir_ + "/checkpoint-" + std::to_string(best_step));
  EXPECT_NEAR(last["best_metric"].get<double>(), best, 1e-8);
  // Every checkpoint event is flagged best exactly when its edit_distance beats all earlier
  // ones (not by eval_loss), and carries the generation metrics it was judged by.
  double so_far = -1;
  int checkpoints = 0;
  for (const json& p : ReadJsonl(*job_dir_ + "/progress.jsonl")) {
    if (p["type"] != "checkpoint") continue;
    ++checkpoints;
    const double value = p["metrics"]["edit_distance"];
    EXPECT_EQ(p["best"].get<bool>(), value > so_far) << p.dump();
    so_far = std::max(so_far, value);
    EXPECT_TRUE(p["metrics"].contains("bleu"));
    EXPECT_TRUE(p["metrics"].contains("exact_match"));
  }
  EXPECT_EQ(checkpoints, 3);
}

TEST_F(JobGenerationEvalTest, TensorBoardHasTheGenerationScalars) {
  ASSERT_EQ(exit_code_, api::kWorkerOk);
  std::string events;
  for (const auto& entry : std::filesystem::directory_iterator(*job_dir_ + "/runs")) {
    if (entry.path().filename().string().rfind("events.out.tfevents", 0) == 0) {
      events = entry.path().string();
    }
  }
  ASSERT_FALSE(events.empty());
  auto scalars = ReadTensorBoardScalars(events);
  ASSERT_TRUE(scalars.ok()) << scalars.status();
  std::vector<json> evals = EvalLines(*job_dir_);
  for (const char* tag :
       {"eval/exact_match", "eval/edit_distance", "eval/bleu", "eval/edit_distance_token"}) {
    ASSERT_TRUE(scalars->count(tag)) << tag;
    const auto& points = scalars->at(tag);
    ASSERT_EQ(points.size(), evals.size()) << tag;
    const std::string key = std::string("eval_") + (tag + 5);
    for (size_t i = 0; i < points.size(); ++i) {
      EXPECT_EQ(points[i].step, StepOf(evals[i]));
      EXPECT_NEAR(points[i].value, evals[i][key].get<double>(), 1e-6) << tag;  // float32
    }
  }
}

TEST_F(JobGenerationEvalTest, EvalServiceOnTheJobsSplitMatchesTheTrainer) {
  ASSERT_EQ(exit_code_, api::kWorkerOk);
  json last = ReadJsonl(*job_dir_ + "/logging.jsonl").back();
  const std::string best = last["best_model_checkpoint"];
  const int64_t best_step = std::stoll(best.substr(best.rfind('-') + 1));
  api::JobStatus status;
  status.id = "sft-test-1";
  status.job_dir = *job_dir_;
  status.best_checkpoint = best;
  OneJob jobs(status);
  api::InferenceConfig config;
  config.models = {{"tiny", TinyWorld::Get().model_dir(), "cpu", "auto"}};
  config.images.allowed_roots = std::vector<std::string>{TinyWorld::Get().root()};
  auto inference = api::InferenceService::Create(config, nullptr);
  ASSERT_TRUE(inference.ok()) << inference.status();
  auto service = api::EvalService::Create(inference->get(), &jobs, {TinyWorld::Get().root()},
                                          TinyWorld::Get().root() + "/state");
  api::EvalRequest request;
  request.job_id = status.id;
  request.sampling.max_new_tokens = 8;
  request.concurrency = 3;
  auto summary = service->Evaluate(request, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->samples, kVal);
  EXPECT_EQ(summary->results_path.rfind(*job_dir_ + "/evals/", 0), 0u);
  EXPECT_TRUE((*inference)->ListAdapters().empty());  // the checkpoint's adapter is unloaded

  json at_best;
  for (const json& e : EvalLines(*job_dir_)) {
    if (StepOf(e) == best_step) at_best = e;
  }
  ASSERT_FALSE(at_best.is_null());
  EXPECT_NEAR(*summary->eval_loss, at_best["eval_loss"].get<double>(), 1e-6);
  EXPECT_NEAR(*summary->eval_acc, at_best["eval_acc"].get<double>(), 1e-8);
  EXPECT_NEAR(summary->edit_distance_char, at_best["eval_edit_distance"].get<double>(), 1e-8);
  EXPECT_NEAR(summary->bleu, at_best["eval_bleu"].get<double>(), 1e-8);

  std::vector<json> ours = ReadJsonl(summary->results_path);
  std::vector<json> worker =
      ReadJsonl(*job_dir_ + "/eval_results/step-" + std::to_string(best_step) + ".jsonl");
  ASSERT_EQ(ours.size(), worker.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i]["source"], worker[i]["source"]);
    EXPECT_EQ(ours[i]["prediction"], worker[i]["prediction"]) << "sample " << i;
  }

  // The offline path (vlmd generate --adapter) agrees on every sample too.
  api::ModelRunOptions offline;
  offline.model_dir = TinyWorld::Get().model_dir();
  offline.adapter_dir = best;
  SamplingRequest greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = 8;
  for (const json& line : ours) {
    const std::string source = line["source"];
    const int row = std::stoi(source.substr(source.rfind(':') + 1));
    json req = {
        {"messages",
         {{{"role", "user"},
           {"content",
            {{{"type", "image"}, {"image", *job_dir_ + "/img" + std::to_string(row - 1) + ".png"}},
             {{"type", "text"}, {"text", "Using LaTeX to perform OCR on the image."}}}}}}},
        {"min_pixels", 3136},
        {"max_pixels", 50176}};
    eval_testing::WriteText(*job_dir_ + "/req.json", req.dump());
    auto generated = api::Generate(offline, *job_dir_ + "/req.json", greedy);
    ASSERT_TRUE(generated.ok()) << generated.status();
    EXPECT_EQ(line["prediction"], json::parse(*generated)["text"]) << source;
  }

  // The same checkpoint loaded by name gives the same predictions.
  ASSERT_TRUE((*inference)->LoadAdapter("mine", best, "tiny").ok());
  request.job_id.clear();
  request.adapter = "mine";
  request.datasets = {*job_dir_ + "/train.jsonl"};
  request.teacher_forced = false;
  auto named = service->Evaluate(request, nullptr);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->samples, kSamples);
  std::vector<json> all = ReadJsonl(named->results_path);
  for (const json& line : ours) {
    const std::string source = line["source"];
    const int row = std::stoi(source.substr(source.rfind(':') + 1));
    EXPECT_EQ(all[row - 1]["prediction"], line["prediction"]) << source;
  }
  (*inference)->Shutdown(std::chrono::milliseconds(0));
}

TEST_F(JobGenerationEvalTest, CheckpointChoices) {
  ASSERT_EQ(exit_code_, api::kWorkerOk);
  api::JobStatus status;
  status.id = "sft-test-2";
  status.job_dir = *job_dir_;
  OneJob jobs(status);
  api::InferenceConfig config;
  config.models = {{"tiny", TinyWorld::Get().model_dir(), "cpu", "auto"}};
  auto inference = api::InferenceService::Create(config, nullptr);
  ASSERT_TRUE(inference.ok()) << inference.status();
  auto service = api::EvalService::Create(inference->get(), &jobs, {TinyWorld::Get().root()},
                                          TinyWorld::Get().root() + "/state");
  api::EvalRequest request;
  request.job_id = status.id;
  request.sampling.max_new_tokens = 2;
  request.max_samples = 1;
  request.teacher_forced = false;
  for (const char* ok : {"best", "last", "4"}) {
    request.checkpoint = ok;
    auto summary = service->Evaluate(request, nullptr);
    EXPECT_TRUE(summary.ok()) << ok << ": " << summary.status();
  }
  request.checkpoint = "nope";
  EXPECT_EQ(service->Evaluate(request, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.checkpoint = "99";
  EXPECT_EQ(service->Evaluate(request, nullptr).status().code(), absl::StatusCode::kNotFound);
  request.job_id = "unknown";
  EXPECT_EQ(service->Evaluate(request, nullptr).status().code(), absl::StatusCode::kNotFound);
  (*inference)->Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace vlmd
