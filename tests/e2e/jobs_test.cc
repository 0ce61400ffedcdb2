// End to end: one LoRA job on the tiny model through `vlmctl sft --watch`, run by the real
// `vlmd train` worker on the CPU with a generated image+text data set, and everything it
// leaves: the events and states in order, a falling loss, PEFT checkpoints with the best one
// kept through rotation, TensorBoard records, SWIFT's logging.jsonl keys, eval metrics, the
// adapter served under the job's name, a merge equal to base+adapter, and the metrics.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "core/train/tensorboard.h"
#include "nlohmann/json.hpp"
#include "tests/common/http_client.h"
#include "tests/e2e/job_harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;

constexpr int kSteps = 20, kEvery = 5;

class SftE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    rows_ = WriteImageDataset(dir_->path(), 16);
    server_ =
        ServerProcess::Start(JobServerYaml(dir_->path()), dir_->path(), {}, &error_).release();
    if (server_ == nullptr) return;
    // The best checkpoint is the one with the *highest* eval loss (the first, as the loss
    // falls), so rotation to save_total_limit 2 must keep it next to the last one.
    std::vector<std::string> args = {"sft",   "--name",
                                     "latex", "--save_total_limit",
                                     "2",     "--metric_for_best_model",
                                     "loss",  "--greater_is_better",
                                     "true",  "--watch",
                                     "--json"};
    std::vector<std::string> flags = QuickJobFlags(dir_->Join("train.jsonl"), kSteps, kEvery);
    args.insert(args.end(), flags.begin(), flags.end());
    sft_ = new ProcessResult(Vlmctl(*server_, args));
    std::istringstream lines(sft_->out);
    std::string line;
    if (std::getline(lines, line)) {
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("job")) job_id_ = j["job"].value("id", "");
    }
    auto stub = JobsStub(*server_);
    if (!job_id_.empty()) GetJob(*stub, job_id_, &job_);
  }
  static void TearDownTestSuite() {
    delete sft_;
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << error_;
    ASSERT_FALSE(job_id_.empty()) << sft_->out << sft_->err;
    ASSERT_EQ(job_.state(), v1::JOB_STATE_SUCCEEDED) << job_.reason() << "\n" << sft_->err;
  }

  // The events vlmctl printed (every line after the first, which is the submitted job).
  static std::vector<json> WatchedEvents() {
    std::vector<json> events;
    std::istringstream lines(sft_->out);
    std::string line;
    std::getline(lines, line);
    while (std::getline(lines, line)) events.push_back(json::parse(line, nullptr, false));
    return events;
  }
  static std::string Ckpt(int step) {
    return job_.job_dir() + "/checkpoint-" + std::to_string(step);
  }
  // A request for `vlmd generate` / `vlmd dump` on the first data row.
  static std::string RequestJson() {
    return json{{"messages",
                 {{{"role", "user"},
                   {"content",
                    {{{"type", "image"}, {"image", rows_[0].image}},
                     {{"type", "text"}, {"text", "Using LaTeX to perform OCR on the image."}}}}}}},
                {"max_pixels", 50176}}
        .dump();
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::vector<DataRow> rows_;
  static ProcessResult* sft_;
  static std::string error_, job_id_;
  static v1::JobStatus job_;
};

TempDir* SftE2E::dir_ = nullptr;
ServerProcess* SftE2E::server_ = nullptr;
std::vector<DataRow> SftE2E::rows_;
ProcessResult* SftE2E::sft_ = nullptr;
std::string SftE2E::error_, SftE2E::job_id_;
v1::JobStatus SftE2E::job_;

TEST_F(SftE2E, StatesInOrderAndEveryKindOfEvent) {
  EXPECT_EQ(sft_->exit_code, 0) << sft_->err;
  std::vector<std::string> states;
  std::map<std::string, int> types;
  int64_t seq = 0;
  for (const json& e : WatchedEvents()) {
    ASSERT_TRUE(e.is_object());
    EXPECT_EQ(e.value("seq", ""), std::to_string(++seq));  // from the first, none missing
    std::string type = e.value("type", "");
    ++types[type];
    if (type == "JOB_EVENT_TYPE_STATE") states.push_back(e["status"].value("state", ""));
  }
  EXPECT_EQ(states, (std::vector<std::string>{"JOB_STATE_VALIDATING", "JOB_STATE_QUEUED",
                                              "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"}));
  EXPECT_EQ(types["JOB_EVENT_TYPE_TRAIN_METRICS"], kSteps);  // logging_steps 1
  EXPECT_EQ(types["JOB_EVENT_TYPE_EVAL_METRICS"], kSteps / kEvery);
  EXPECT_EQ(types["JOB_EVENT_TYPE_CHECKPOINT"], kSteps / kEvery);
  EXPECT_GE(types["JOB_EVENT_TYPE_LOG"], 2);  // the data check and the split
  // The same history through `vlmctl status --watch` (not a terminal: a line per update).
  ProcessResult watch = Vlmctl(*server_, {"status", job_id_, "--watch"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_NE(watch.out.find("[########################] 20/20 100%"), std::string::npos)
      << watch.out;
  EXPECT_NE(watch.out.find("SUCCEEDED: training finished"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("| eval loss "), std::string::npos) << watch.out;
}

TEST_F(SftE2E, LossFallsWithAHighLearningRate) {
  std::vector<double> losses;
  for (const json& e : WatchedEvents()) {
    if (e.value("type", "") != "JOB_EVENT_TYPE_TRAIN_METRICS") continue;
    losses.push_back(e["status"]["train_metrics"].value("loss", 0.0));
  }
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps));
  double first = (losses[0] + losses[1] + losses[2]) / 3;
  double last = (losses[kSteps - 1] + losses[kSteps - 2] + losses[kSteps - 3]) / 3;
  EXPECT_LT(last, first - 0.4) << "first steps " << first << ", last steps " << last;
  EXPECT_TRUE(job_.has_train_metrics());
  EXPECT_EQ(job_.step(), kSteps);
  EXPECT_EQ(job_.max_steps(), kSteps);
}

TEST_F(SftE2E, CheckpointsArePeftAndTheBestSurvivesRotation) {
  // The best checkpoint has the highest eval loss (greater_is_better); rotation keeps it and
  // the last one.
  int best = 0;
  double highest = -1;
  for (const json& e : WatchedEvents()) {
    if (e.value("type", "") != "JOB_EVENT_TYPE_EVAL_METRICS") continue;
    double loss = e["status"]["eval_metrics"].value("loss", 0.0);
    if (loss > highest) {
      highest = loss;
      best = std::stoi(e["status"].value("step", "0"));
    }
  }
  ASSERT_GT(best, 0);
  ASSERT_LT(best, kSteps) << "the eval loss rose until the end; the test needs it to fall";
  ASSERT_EQ(job_.checkpoints_size(), 2);
  EXPECT_EQ(job_.checkpoints(0).step(), best);
  EXPECT_TRUE(job_.checkpoints(0).best());
  EXPECT_EQ(job_.checkpoints(1).step(), kSteps);
  EXPECT_EQ(job_.best_checkpoint(), Ckpt(best));
  for (int step = kEvery; step <= kSteps; step += kEvery) {
    bool kept = step == best || step == kSteps;
    EXPECT_EQ(ReadFile(Ckpt(step) + "/adapter_config.json").empty(), !kept) << step;
  }
  json config = json::parse(ReadFile(Ckpt(kSteps) + "/adapter_config.json"), nullptr, false);
  EXPECT_EQ(config.value("peft_type", ""), "LORA");
  EXPECT_EQ(config.value("r", 0), 8);
  EXPECT_EQ(config.value("lora_alpha", 0.0), 32.0);
  const std::regex kPeftName(
      R"(base_model\.model\.model\.language_model\.layers\.\d+\.)"
      R"((self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.lora_[AB]\.weight)");
  std::vector<std::string> names = SafetensorsNames(Ckpt(kSteps) + "/adapter_model.safetensors");
  EXPECT_EQ(names.size(), 4u * 7u * 2u);  // 4 layers, 7 linears, A and B
  for (const std::string& name : names) EXPECT_TRUE(std::regex_match(name, kPeftName)) << name;
}

TEST_F(SftE2E, TensorBoardRecordsAndSwiftLoggingJsonl) {
  std::string events_file;
  ProcessResult ls =
      RunProcess({"sh", "-c", "ls " + job_.job_dir() + "/runs/events.out.tfevents.*"});
  std::istringstream(ls.out) >> events_file;
  auto scalars = ReadTensorBoardScalars(events_file);
  ASSERT_TRUE(scalars.ok()) << scalars.status() << " " << ls.err;
  for (const char* tag : {"train/loss", "train/acc", "train/learning_rate", "train/grad_norm"}) {
    ASSERT_TRUE(scalars->count(tag)) << tag;
    EXPECT_EQ(scalars->at(tag).size(), static_cast<size_t>(kSteps)) << tag;
  }
  for (const char* tag : {"eval/loss", "eval/acc"}) {
    ASSERT_TRUE(scalars->count(tag)) << tag;
    EXPECT_EQ(scalars->at(tag).size(), static_cast<size_t>(kSteps / kEvery)) << tag;
  }
  EXPECT_EQ(scalars->at("train/loss").back().step, kSteps);
  int train = 0, eval = 0;
  std::vector<std::string> lines = ReadLines(job_.job_dir() + "/logging.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    if (j.contains("loss")) {
      ++train;
      for (const char* key :
           {"acc", "grad_norm", "learning_rate", "memory(GiB)", "train_speed(iter/s)", "epoch",
            "global_step/max_steps", "percentage", "elapsed_time", "remaining_time"}) {
        EXPECT_TRUE(j.contains(key)) << key << " in " << line;
      }
    } else if (j.contains("eval_loss")) {
      ++eval;
      for (const char* key : {"eval_acc", "eval_runtime", "eval_samples_per_second",
                              "eval_steps_per_second", "epoch"}) {
        EXPECT_TRUE(j.contains(key)) << key << " in " << line;
      }
    }
  }
  EXPECT_EQ(train, kSteps);
  EXPECT_EQ(eval, kSteps / kEvery);
  json summary = json::parse(lines.back(), nullptr, false);
  EXPECT_EQ(summary.value("best_model_checkpoint", ""), job_.best_checkpoint());
  EXPECT_EQ(summary.value("last_model_checkpoint", ""), Ckpt(kSteps));
  EXPECT_TRUE(summary.contains("log_history") && summary.contains("train_time"));
  EXPECT_FALSE(ReadFile(job_.job_dir() + "/images/train_loss.png").empty());
}

TEST_F(SftE2E, EvalMetricsAndDataCountsInTheStatus) {
  ASSERT_TRUE(job_.has_eval_metrics());
  EXPECT_GT(job_.eval_metrics().loss(), 0);
  EXPECT_GE(job_.eval_metrics().acc(), 0);
  EXPECT_TRUE(job_.eval_metrics().all().count("eval_loss"));
  EXPECT_EQ(job_.train_samples(), 13);  // 16 rows, dataset_test_ratio 0.2 -> 3 held out
  EXPECT_EQ(job_.val_samples(), 3);
  EXPECT_EQ(job_.attempts(), 1);
  EXPECT_EQ(job_.spec().lora_rank(), 8);  // SWIFT defaults filled in
  EXPECT_EQ(job_.spec().target_modules(0), "DEFAULT");
  EXPECT_EQ(job_.spec().max_pixels(), 50176);
  ProcessResult jobs = Vlmctl(*server_, {"jobs", "--state", "succeeded"});
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_NE(jobs.out.find(job_id_), std::string::npos) << jobs.out;
  ProcessResult none = Vlmctl(*server_, {"jobs", "--state", "running", "--json"});
  EXPECT_EQ(none.out, "{}\n");
}

TEST_F(SftE2E, TheAdapterAnswersUnderTheJobsName) {
  v1::InferRequest request;
  v1::ChatMessage* m = request.add_messages();
  m->set_role("user");
  m->add_content()->mutable_image()->set_path(rows_[0].image);
  m->add_content()->set_text("Using LaTeX to perform OCR on the image.");
  request.set_adapter("latex");
  request.set_max_pixels(50176);
  request.mutable_params()->set_max_new_tokens(8);
  request.mutable_params()->set_temperature(0);
  v1::InferResponse response;
  grpc::Status status = Infer(*server_->Stub(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.adapter(), "latex");
  std::string error;
  std::vector<int32_t> expected = OfflineGenerate(TinyModelDir(), RequestJson(), 8, dir_->path(),
                                                  &error, job_.best_checkpoint());
  ASSERT_FALSE(expected.empty()) << error;
  EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
            expected);
}

TEST_F(SftE2E, MergeEqualsBasePlusAdapter) {
  std::string merged = dir_->Join("merged");
  ProcessResult merge = Vlmctl(*server_, {"merge", "--job", job_id_, "--checkpoint", "last",
                                          "--out", merged, "--register", "latex-merged"});
  ASSERT_EQ(merge.exit_code, 0) << merge.err;
  EXPECT_NE(merge.out.find("served as model latex-merged"), std::string::npos) << merge.out;
  std::string request = dir_->Join("dump-request.json");
  WriteFile(request, RequestJson());
  ProcessResult a = RunProcess({VlmdBinary(), "dump", "--model", merged, "--request", request,
                                "--out", dir_->Join("merged.safetensors")});
  ProcessResult b =
      RunProcess({VlmdBinary(), "dump", "--model", TinyModelDir(), "--adapter", Ckpt(kSteps),
                  "--request", request, "--out", dir_->Join("adapter.safetensors")});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::vector<float> x = SafetensorsFloats(dir_->Join("merged.safetensors"), "logits");
  std::vector<float> y = SafetensorsFloats(dir_->Join("adapter.safetensors"), "logits");
  ASSERT_EQ(x.size(), y.size());
  ASSERT_FALSE(x.empty());
  float worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  EXPECT_LT(worst, 1e-4) << "merged vs base+adapter logits";
  // The merged model is served, and the merge is counted.
  ProcessResult models = Vlmctl(*server_, {"models"});
  EXPECT_NE(models.out.find("latex-merged"), std::string::npos) << models.out;
  std::string metrics = testing::HttpGet(server_->metrics_port(), "/metrics").body;
  EXPECT_NE(metrics.find("vlmd_merges_total{code=\"OK\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vlmd_jobs{state=\"succeeded\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vlmd_job_queue_length 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vlmd_gpus_in_use{role=\"training\"} 0"), std::string::npos);
}

TEST_F(SftE2E, BadSpecsAreRefusedWithTheirCode) {
  ProcessResult bad =
      Vlmctl(*server_, {"sft", "--model", TinyModelDir(), "--dataset", dir_->Join("train.jsonl"),
                        "--gpus", "0", "--learning_rate", "2"});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("INVALID_ARGUMENT: job spec: learning_rate"), std::string::npos)
      << bad.err;
  ProcessResult outside = Vlmctl(
      *server_, {"sft", "--model", TinyModelDir(), "--dataset", "/etc/passwd", "--gpus", "0"});
  EXPECT_EQ(outside.exit_code, 5) << outside.err;
  EXPECT_NE(outside.err.find("PERMISSION_DENIED"), std::string::npos) << outside.err;
  ProcessResult same_name =
      Vlmctl(*server_, {"sft", "--name", "latex", "--model", TinyModelDir(), "--dataset",
                        dir_->Join("train.jsonl"), "--gpus", "0"});
  EXPECT_EQ(same_name.exit_code, 4) << same_name.err;  // ALREADY_EXISTS
  ProcessResult gpus = Vlmctl(*server_, {"sft", "--model", TinyModelDir(), "--dataset",
                                         dir_->Join("train.jsonl"), "--gpus", "1", "--watch"});
  EXPECT_EQ(gpus.exit_code, 1) << gpus.err;  // no GPU pool: FAILED in VALIDATING
  EXPECT_NE(gpus.err.find("training pool has 0"), std::string::npos) << gpus.err;
  EXPECT_EQ(Vlmctl(*server_, {"status", "sft-00000000-0000"}).exit_code, 4);
  EXPECT_EQ(Vlmctl(*server_, {"cancel", job_id_}).exit_code, 3);  // already finished
}

}  // namespace
}  // namespace vlmd::e2e
