// logging.jsonl, TensorBoard, progress lines and the fanout.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/file_util.h"
#include "core/train/logging_jsonl_sink.h"
#include "core/train/progress.h"
#include "core/train/tensorboard.h"
#include "core/train/tfrecord.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

// The numbers of the example line in ms-swift #2436 (spec/swift.md §3), unrounded.
TrainLog SwiftExampleLog() {
  TrainLog log;
  log.step = 8270;
  log.max_steps = 11043;
  log.epoch = 0.74898126;
  log.loss = 1.43512345;
  log.acc = 0.64012345678;
  log.grad_norm = 3.48;
  log.learning_rate = 1.628e-05;
  log.memory_gib = 19.5412;
  log.train_speed = 0.40812345678;
  log.samples_per_second = 6.5;
  log.elapsed_s = 20269.9;
  log.remaining_s = 6796.2;
  return log;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(LoggingJsonlTest, DurationsAndPercentages) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(59.9), "59s");
  EXPECT_EQ(FormatDuration(61), "1m 1s");
  EXPECT_EQ(FormatDuration(3723), "1h 2m 3s");
  EXPECT_EQ(FormatDuration(3600), "1h 0m 0s");
  EXPECT_EQ(FormatDuration(90061), "1d 1h 1m 1s");
  EXPECT_EQ(FormatDuration(-5), "0s");
  EXPECT_EQ(FormatPercentage(8270, 11043), "74.89%");
  EXPECT_EQ(FormatPercentage(0, 0), "0.00%");
  EXPECT_EQ(FormatPercentage(10, 10), "100.00%");
}

TEST(LoggingJsonlTest, TrainLineHasSwiftKeysInOrder) {
  EXPECT_EQ(LoggingJsonlTrainLine(SwiftExampleLog()),
            R"j({"loss":1.4351,"acc":0.64012346,"grad_norm":3.48,"learning_rate":1.628e-05,)j"
            R"j("memory(GiB)":19.54,"train_speed(iter/s)":0.408123,"epoch":0.74898126,)j"
            R"j("global_step/max_steps":"8270/11043","percentage":"74.89%",)j"
            R"j("elapsed_time":"5h 37m 49s","remaining_time":"1h 53m 16s"})j");
  TrainLog first;
  first.max_steps = 10;
  const std::string line = LoggingJsonlTrainLine(first);
  EXPECT_EQ(line.find("remaining_time"), std::string::npos) << line;  // SWIFT omits it at 0%
}

TEST(LoggingJsonlTest, EvalLineAndExtraMetrics) {
  EvalLog log;
  log.step = 50;
  log.max_steps = 200;
  log.epoch = 0.5;
  log.eval_loss = 0.123456789;
  log.eval_acc = 0.9;
  log.eval_runtime = 12.5;
  log.eval_samples_per_second = 8;
  log.eval_steps_per_second = 8;
  log.extra["exact_match"] = 0.25;
  EXPECT_EQ(LoggingJsonlEvalLine(log, 100),
            R"({"eval_loss":0.12345679,"eval_acc":0.9,"eval_runtime":12.5,)"
            R"("eval_samples_per_second":8.0,"eval_steps_per_second":8.0,)"
            R"("eval_exact_match":0.25,"epoch":0.5,"global_step/max_steps":"50/200",)"
            R"("percentage":"25.00%","elapsed_time":"1m 40s","remaining_time":"5m 0s"})");
}

TEST(LoggingJsonlTest, SinkAppendsFlushedLinesAndASummary) {
  TempDir dir;
  const std::string path = dir.Path("logging.jsonl");
  dir.Write("logging.jsonl", "{\"earlier\":1}\n");  // a resumed job appends
  StatusOr<std::unique_ptr<LoggingJsonlSink>> sink = LoggingJsonlSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  TrainLog log = SwiftExampleLog();
  log.elapsed_s = 100;
  (*sink)->OnTrainLog(log);
  // Visible on disk while the sink is still open (flushed per line).
  ASSERT_EQ(Lines(path).size(), 2u);
  EvalLog eval;
  eval.step = log.step;
  eval.eval_loss = 0.5;
  (*sink)->OnEvalLog(eval);  // max_steps 0: taken from the last train log
  TrainSummary summary;
  summary.best_model_checkpoint = "/jobs/j/checkpoint-50";
  summary.best_metric = 0.5;
  summary.last_model_checkpoint = "/jobs/j/checkpoint-100";
  summary.train_time = 123.4;
  summary.memory = 7.891;
  (*sink)->OnFinish(summary);
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 4u);
  nlohmann::json eval_line = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(eval_line["global_step/max_steps"], "8270/11043");
  EXPECT_EQ(eval_line["elapsed_time"], "1m 40s");  // the train log's 100 s plus a few ms
  nlohmann::json last = nlohmann::json::parse(lines[3]);
  EXPECT_EQ(last["best_model_checkpoint"], "/jobs/j/checkpoint-50");
  EXPECT_EQ(last["last_model_checkpoint"], "/jobs/j/checkpoint-100");
  EXPECT_EQ(last["best_metric"], 0.5);
  EXPECT_EQ(last["global_step"], 8270);
  EXPECT_EQ(last["memory(GiB)"], 7.89);
  EXPECT_EQ(last["train_time"], 123.4);
  ASSERT_EQ(last["log_history"].size(), 2u);
  EXPECT_EQ(last["log_history"][0]["loss"], 1.4351);
  EXPECT_EQ(last["log_history"][1]["eval_loss"], 0.5);
  EXPECT_EQ(LoggingJsonlSink::Open(dir.Path("no/such/dir/x.jsonl")).status().code(),
            absl::StatusCode::kInternal);
}

TEST(TensorBoardTest, SinkWritesScalarsTheReaderReadsBack) {
  TempDir dir;
  StatusOr<std::unique_ptr<TensorBoardSink>> sink = TensorBoardSink::Create(dir.Path("runs"));
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::string path = (*sink)->path();
  const std::string name = std::filesystem::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(name.substr(name.size() - 2), ".0");
  EXPECT_NE(name.find("." + std::to_string(getpid()) + "."), std::string::npos) << name;
  TrainLog log;
  log.step = 5;
  log.loss = 2.5;
  log.acc = 0.1;
  log.learning_rate = 2e-5;
  log.grad_norm = 1.25;
  log.train_speed = 0.75;
  (*sink)->OnTrainLog(log);
  log.step = 10;
  log.loss = 1.0 / 3.0;
  (*sink)->OnTrainLog(log);
  EvalLog eval;
  eval.step = 10;
  eval.eval_loss = 0.75;
  eval.eval_acc = 0.5;
  eval.extra["exact_match"] = 0.125;
  (*sink)->OnEvalLog(eval);
  // Read while the sink is open: every record is flushed.
  StatusOr<std::map<std::string, std::vector<ScalarPoint>>> scalars = ReadTensorBoardScalars(path);
  ASSERT_TRUE(scalars.ok()) << scalars.status();
  std::vector<std::string> tags;
  for (const auto& [tag, points] : *scalars) tags.push_back(tag);
  EXPECT_EQ(tags,
            (std::vector<std::string>{"eval/acc", "eval/exact_match", "eval/loss", "eval/runtime",
                                      "eval/samples_per_second", "eval/steps_per_second",
                                      "train/acc", "train/grad_norm", "train/learning_rate",
                                      "train/loss", "train/train_speed"}));
  const std::vector<ScalarPoint>& loss = scalars->at("train/loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0].step, 5);
  EXPECT_EQ(loss[0].value, 2.5);
  EXPECT_EQ(loss[1].step, 10);
  EXPECT_EQ(loss[1].value, static_cast<double>(static_cast<float>(1.0 / 3.0)));
  EXPECT_GT(loss[1].wall_time, 1.7e9);
  EXPECT_EQ(scalars->at("train/learning_rate")[0].value, static_cast<double>(2e-5f));
  EXPECT_EQ(scalars->at("eval/exact_match")[0].value, 0.125);
  EXPECT_EQ(scalars->at("eval/exact_match")[0].step, 10);
}

TEST(TensorBoardTest, ReaderRejectsDamage) {
  TempDir dir;
  std::string good = FrameRecord(EncodeFileVersionEvent(1.0)) +
                     FrameRecord(EncodeScalarEvent(2.0, 1, "train/loss", 0.5f));
  dir.Write("ok", good);
  StatusOr<std::map<std::string, std::vector<ScalarPoint>>> ok =
      ReadTensorBoardScalars(dir.Path("ok"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("train/loss")[0].value, 0.5);
  std::string flipped = good;
  flipped[flipped.size() - 6] ^= 0x40;
  dir.Write("flipped", flipped);
  EXPECT_EQ(ReadTensorBoardScalars(dir.Path("flipped")).status().code(),
            absl::StatusCode::kDataLoss);
  dir.Write("noversion", FrameRecord(EncodeScalarEvent(2.0, 1, "x", 0.5f)));
  EXPECT_NE(ReadTensorBoardScalars(dir.Path("noversion")).status().message().find("file_version"),
            absl::string_view::npos);
  dir.Write("empty", "");
  EXPECT_EQ(ReadTensorBoardScalars(dir.Path("empty")).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadTensorBoardScalars(dir.Path("none")).status().code(), absl::StatusCode::kNotFound);
}

ProgressEvent RoundTrip(const ProgressEvent& event) {
  StatusOr<ProgressEvent> parsed = ParseProgressLine(FormatProgressLine(event));
  EXPECT_TRUE(parsed.ok()) << parsed.status() << " for " << FormatProgressLine(event);
  EXPECT_EQ(parsed->type, event.type);
  return *parsed;
}

TEST(ProgressTest, EveryEventTypeRoundTrips) {
  ProgressEvent train;
  train.type = ProgressEvent::Type::kTrain;
  train.train = SwiftExampleLog();
  const TrainLog t = RoundTrip(train).train;
  EXPECT_EQ(t.step, 8270);
  EXPECT_EQ(t.max_steps, 11043);
  EXPECT_EQ(t.loss, 1.43512345);  // progress lines keep full precision
  EXPECT_EQ(t.acc, 0.64012345678);
  EXPECT_EQ(t.learning_rate, 1.628e-05);
  EXPECT_EQ(t.memory_gib, 19.5412);
  EXPECT_EQ(t.samples_per_second, 6.5);
  EXPECT_EQ(t.remaining_s, 6796.2);

  ProgressEvent eval;
  eval.type = ProgressEvent::Type::kEval;
  eval.eval.step = 50;
  eval.eval.eval_loss = 0.5;
  eval.eval.eval_runtime = 3;
  eval.eval.extra = {{"exact_match", 0.75}, {"rouge_l", 0.5}};
  const EvalLog e = RoundTrip(eval).eval;
  EXPECT_EQ(e.step, 50);
  EXPECT_EQ(e.eval_loss, 0.5);
  EXPECT_EQ(e.eval_runtime, 3);
  EXPECT_EQ(e.extra, eval.eval.extra);

  ProgressEvent checkpoint;
  checkpoint.type = ProgressEvent::Type::kCheckpoint;
  checkpoint.checkpoint = {100, "/jobs/a/checkpoint-100", true, {{"loss", 0.25}}};
  const CheckpointEvent c = RoundTrip(checkpoint).checkpoint;
  EXPECT_EQ(c.step, 100);
  EXPECT_EQ(c.path, "/jobs/a/checkpoint-100");
  EXPECT_TRUE(c.best);
  EXPECT_EQ(c.metrics, checkpoint.checkpoint.metrics);

  ProgressEvent state;
  state.type = ProgressEvent::Type::kState;
  state.state = "FAILED";
  state.message = "out of memory at step 12";
  EXPECT_EQ(RoundTrip(state).message, "out of memory at step 12");
  EXPECT_EQ(RoundTrip(state).state, "FAILED");

  ProgressEvent log;
  log.type = ProgressEvent::Type::kLog;
  log.message = "line with \"quotes\", a tab\t and ünïcode";
  EXPECT_EQ(FormatProgressLine(log).find('\n'), std::string::npos);
  EXPECT_EQ(RoundTrip(log).message, log.message);

  ProgressEvent finish;
  finish.type = ProgressEvent::Type::kFinish;
  finish.summary = {"/b", 0.125, "/l", 60.5, 3.25};
  const TrainSummary s = RoundTrip(finish).summary;
  EXPECT_EQ(s.best_model_checkpoint, "/b");
  EXPECT_EQ(s.best_metric, 0.125);
  EXPECT_EQ(s.last_model_checkpoint, "/l");
  EXPECT_EQ(s.train_time, 60.5);
  EXPECT_EQ(s.memory, 3.25);
}

TEST(ProgressTest, LineFormatAndNonFiniteValues) {
  ProgressEvent state;
  state.type = ProgressEvent::Type::kState;
  state.state = "RUNNING";
  EXPECT_EQ(FormatProgressLine(state), R"({"type":"state","state":"RUNNING","message":""})");
  ProgressEvent log;
  log.type = ProgressEvent::Type::kLog;
  log.message = "hi";
  EXPECT_EQ(FormatProgressLine(log), R"({"type":"log","line":"hi"})");
  ProgressEvent train;
  train.type = ProgressEvent::Type::kTrain;
  train.train.loss = std::nan("");
  train.train.grad_norm = INFINITY;
  const std::string line = FormatProgressLine(train);
  EXPECT_NE(line.find("\"loss\":null"), std::string::npos) << line;
  const TrainLog t = RoundTrip(train).train;
  EXPECT_TRUE(std::isnan(t.loss));
  EXPECT_TRUE(std::isnan(t.grad_norm));  // JSON cannot say infinity either
}

TEST(ProgressTest, NonProtocolLinesAreErrors) {
  for (const char* line :
       {"", "plain text from a library", "[1, 2]", "{\"no\": \"type\"}", "{\"type\": 3}",
        "{\"type\": \"bogus\"}", "{\"type\": \"train\", \"loss\": \"high\"}",
        "{\"type\": \"checkpoint\", \"metrics\": [1]}", "{\"type\": \"train\""}) {
    StatusOr<ProgressEvent> parsed = ParseProgressLine(line);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
}

TEST(ProgressTest, SinkWritesOneParsableLinePerEvent) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressSink sink(file);
    sink.OnState("RUNNING", "");
    sink.OnTrainLog(SwiftExampleLog());
    sink.OnEvalLog(EvalLog());
    sink.OnCheckpoint(CheckpointEvent{5, "/c", false, {}});
    sink.OnLogLine("two\nlines");
    sink.OnFinish(TrainSummary());
  }
  std::rewind(file);
  std::vector<ProgressEvent::Type> types;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), file) != nullptr) {
    std::string line(buffer);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    StatusOr<ProgressEvent> parsed = ParseProgressLine(line);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    types.push_back(parsed->type);
  }
  std::fclose(file);
  using T = ProgressEvent::Type;
  EXPECT_EQ(types,
            (std::vector<T>{T::kState, T::kTrain, T::kEval, T::kCheckpoint, T::kLog, T::kFinish}));
}

// Records the calls it gets, prefixed with its name, into a shared list.
class RecordingSink : public TrainingSink {
 public:
  RecordingSink(std::string name, std::vector<std::string>* calls, bool* destroyed = nullptr)
      : name_(std::move(name)), calls_(calls), destroyed_(destroyed) {}
  ~RecordingSink() override {
    if (destroyed_ != nullptr) *destroyed_ = true;
  }
  void OnTrainLog(const TrainLog& log) override { Record("train " + std::to_string(log.step)); }
  void OnEvalLog(const EvalLog& log) override { Record("eval " + std::to_string(log.step)); }
  void OnCheckpoint(const CheckpointEvent& e) override { Record("checkpoint " + e.path); }
  void OnState(const std::string& s, const std::string& m) override { Record(s + " " + m); }
  void OnLogLine(const std::string& line) override { Record("log " + line); }
  void OnFinish(const TrainSummary& s) override { Record("finish " + s.last_model_checkpoint); }

 private:
  void Record(const std::string& what) { calls_->push_back(name_ + ": " + what); }
  std::string name_;
  std::vector<std::string>* calls_;
  bool* destroyed_;
};

TEST(FanoutTest, ForwardsEverythingInOrder) {
  std::vector<std::string> calls;
  bool destroyed = false;
  RecordingSink a("a", &calls);
  {
    FanoutSink fanout;
    fanout.Add(&a);
    fanout.Add(std::make_unique<RecordingSink>("b", &calls, &destroyed));
    TrainLog t;
    t.step = 3;
    fanout.OnState("RUNNING", "go");
    fanout.OnTrainLog(t);
    EvalLog e;
    e.step = 4;
    fanout.OnEvalLog(e);
    fanout.OnCheckpoint(CheckpointEvent{4, "/c4", true, {}});
    fanout.OnLogLine("hello");
    TrainSummary s;
    s.last_model_checkpoint = "/c4";
    fanout.OnFinish(s);
  }
  EXPECT_TRUE(destroyed);  // the owned sink went with the fanout
  EXPECT_EQ(calls, (std::vector<std::string>{
                       "a: RUNNING go", "b: RUNNING go", "a: train 3", "b: train 3", "a: eval 4",
                       "b: eval 4", "a: checkpoint /c4", "b: checkpoint /c4", "a: log hello",
                       "b: log hello", "a: finish /c4", "b: finish /c4"}));
}

}  // namespace
}  // namespace vlmd
