// Worker progress lines -> job status and events; checkpoint discovery on disk.
#include "core/jobs/worker_report.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/base/file_util.h"

namespace vlmd::jobs {
namespace {

using api::JobEvent;

std::string TempDir() {
  char tmpl[] = "/tmp/vlmd_report_test_XXXXXX";
  return mkdtemp(tmpl);
}

void MakeCheckpoint(const std::string& dir, int step, bool complete) {
  std::string ckpt = JoinPath(dir, "checkpoint-" + std::to_string(step));
  ASSERT_TRUE(MakeDirs(ckpt).ok());
  if (complete) {
    ASSERT_TRUE(WriteFileAtomic(JoinPath(ckpt, "trainer_state.json"),
                                "{\"global_step\": " + std::to_string(step) +
                                    ", \"max_steps\": 30, \"best_model_checkpoint\": \"" +
                                    JoinPath(dir, "checkpoint-10") + "\"}")
                    .ok());
  }
}

TEST(WorkerReportTest, TrainLineUpdatesProgressAndMetrics) {
  api::JobStatus s;
  WorkerReport r = ParseWorkerLine(
      R"({"type":"train","step":15,"max_steps":100,"epoch":0.15,"loss":1.5,"acc":0.6,)"
      R"("learning_rate":9e-05,"grad_norm":2.5,"samples_per_second":7.0,"elapsed_s":30,)"
      R"("remaining_s":170})");
  ASSERT_EQ(r.kind, WorkerReport::Kind::kTrain);
  NewEvent e = ApplyWorkerReport(r, &s);
  EXPECT_EQ(e.type, JobEvent::Type::kTrainMetrics);
  EXPECT_EQ(s.step, 15);
  EXPECT_EQ(s.max_steps, 100);
  EXPECT_DOUBLE_EQ(s.epoch, 0.15);
  EXPECT_DOUBLE_EQ(s.train_metrics.at("loss"), 1.5);
  EXPECT_DOUBLE_EQ(s.train_metrics.at("learning_rate"), 9e-05);
  EXPECT_DOUBLE_EQ(s.samples_per_second, 7.0);
  EXPECT_DOUBLE_EQ(s.remaining_s, 170);
}

TEST(WorkerReportTest, CheckpointsTrackTheBestAndDropRotatedOnes) {
  std::string dir = TempDir();
  api::JobStatus s;
  for (int step : {10, 20}) {
    MakeCheckpoint(dir, step, true);
    std::string path = JoinPath(dir, "checkpoint-" + std::to_string(step));
    WorkerReport r =
        ParseWorkerLine(R"({"type":"checkpoint","step":)" + std::to_string(step) + R"(,"path":")" +
                        path + R"(","best":)" + (step == 10 ? "true" : "false") +
                        R"(,"metrics":{"eval_loss":)" + std::to_string(step) + "}}");
    EXPECT_EQ(ApplyWorkerReport(r, &s).type, JobEvent::Type::kCheckpoint);
  }
  ASSERT_EQ(s.checkpoints.size(), 2u);
  EXPECT_TRUE(s.checkpoints[0].best);
  EXPECT_FALSE(s.checkpoints[1].best);
  EXPECT_EQ(s.best_checkpoint, JoinPath(dir, "checkpoint-10"));
  // checkpoint-20 is rotated away by the worker before checkpoint-30 is reported.
  ASSERT_EQ(system(("rm -rf '" + JoinPath(dir, "checkpoint-20") + "'").c_str()), 0);
  MakeCheckpoint(dir, 30, true);
  ApplyWorkerReport(ParseWorkerLine(R"({"type":"checkpoint","step":30,"path":")" +
                                    JoinPath(dir, "checkpoint-30") + R"(","best":true})"),
                    &s);
  ASSERT_EQ(s.checkpoints.size(), 2u);
  EXPECT_EQ(s.checkpoints[0].step, 10);
  EXPECT_FALSE(s.checkpoints[0].best);
  EXPECT_EQ(s.checkpoints[1].step, 30);
  EXPECT_EQ(s.best_checkpoint, JoinPath(dir, "checkpoint-30"));
}

TEST(WorkerReportTest, NonProtocolLinesAreKeptAsRawLogText) {
  for (const std::string line : {"plain text", "{not json", R"({"no_type": 1})", ""}) {
    WorkerReport r = ParseWorkerLine(line);
    EXPECT_EQ(r.kind, WorkerReport::Kind::kLog);
    EXPECT_TRUE(r.raw);
    EXPECT_EQ(r.message, line);
  }
  WorkerReport log = ParseWorkerLine(R"({"type":"log","line":"resumed from x at step 4"})");
  EXPECT_FALSE(log.raw);
  EXPECT_EQ(log.message, "resumed from x at step 4");
  WorkerReport state = ParseWorkerLine(R"({"type":"state","state":"FAILED","message":"oom"})");
  EXPECT_EQ(state.kind, WorkerReport::Kind::kState);
  EXPECT_EQ(state.state, "FAILED");
  EXPECT_EQ(state.message, "oom");
}

TEST(WorkerReportTest, LastCompleteCheckpointSkipsIncompleteOnes) {
  std::string dir = TempDir();
  EXPECT_EQ(LastCompleteCheckpoint(dir), "");
  MakeCheckpoint(dir, 10, true);
  MakeCheckpoint(dir, 20, true);
  MakeCheckpoint(dir, 30, false);  // the worker died while writing it
  ASSERT_TRUE(MakeDirs(JoinPath(dir, "checkpoint-x")).ok());
  EXPECT_EQ(LastCompleteCheckpoint(dir), JoinPath(dir, "checkpoint-20"));
  TrainerStateInfo state = ReadTrainerState(JoinPath(dir, "checkpoint-20"));
  EXPECT_EQ(state.global_step, 20);
  EXPECT_EQ(state.max_steps, 30);
  EXPECT_EQ(state.best_checkpoint, JoinPath(dir, "checkpoint-10"));
  EXPECT_EQ(ReadTrainerState(JoinPath(dir, "checkpoint-30")).global_step, 0);
}

TEST(WorkerReportTest, LastLoggedWorkerStateReadsProgressJsonl) {
  std::string dir = TempDir();
  EXPECT_EQ(LastLoggedWorkerState(dir), "");
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "progress.jsonl"),
                              "{\"type\":\"state\",\"state\":\"RUNNING\"}\n"
                              "{\"type\":\"train\",\"step\":1}\n"
                              "{\"type\":\"state\",\"state\":\"SUCCEEDED\"}\n"
                              "{\"type\":\"log\",\"message\":\"bye\"}\n")
                  .ok());
  EXPECT_EQ(LastLoggedWorkerState(dir), "SUCCEEDED");
}

}  // namespace
}  // namespace vlmd::jobs
