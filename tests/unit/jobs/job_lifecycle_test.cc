// JobManager with real worker processes (the test worker): success, crashes and retries,
// out of memory, cancellation, CPU slots and GPU sets.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "job_test_util.h"

namespace vlmd::jobs {
namespace {

using api::JobState;
using api::JobStatus;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(JobManagerTest, SuccessRecordsCheckpointsBestAndRegistersTheAdapter) {
  FakeInference inference;
  inference.models = {api::ModelInfo{"qwen2-vl-2b", model_dir_, "cpu"}};
  StartManager(&inference);
  Plan("ok", {{"steps", 6}});
  std::string id = Submit(Spec("ok"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_EQ(s.step, 6);
  EXPECT_EQ(s.max_steps, 6);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_DOUBLE_EQ(s.train_metrics.at("loss"), 2.0 / 6);
  EXPECT_DOUBLE_EQ(s.eval_metrics.at("eval_loss"), 1.0 / 6);
  EXPECT_EQ(s.train_samples, 9);
  EXPECT_EQ(s.val_samples, 1);
  ASSERT_EQ(s.checkpoints.size(), 3u);  // 2, 4, 6 (the test worker does not rotate)
  EXPECT_EQ(s.checkpoints.back().step, 6);
  EXPECT_TRUE(s.checkpoints.back().best);
  EXPECT_FALSE(s.checkpoints.front().best);
  EXPECT_EQ(s.best_checkpoint, JoinPath(s.job_dir, "checkpoint-6"));
  EXPECT_GT(s.finished_unix, 0);
  EXPECT_TRUE(s.gpus.empty());
  ASSERT_EQ(inference.loaded.size(), 1u);
  EXPECT_EQ(inference.loaded[0].name, "ok");
  EXPECT_EQ(inference.loaded[0].path, s.best_checkpoint);
  EXPECT_EQ(inference.loaded[0].model, "qwen2-vl-2b");
  EXPECT_EQ(s.reason, "");
  // A CPU job sees no GPU; the multicast switches are always set.
  std::vector<std::string> attempts = Attempts(s);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0],
            "attempt=1 resume= cuda= nvls=0 multicast=1 nvshmem=1 data_root=<unset> fds=0");
  EXPECT_TRUE(PathExists(JoinPath(s.job_dir, "worker.log")));
  EXPECT_TRUE(PathExists(JoinPath(s.job_dir, "job.json")));
}

TEST_F(JobManagerTest, ARestartServesTheAdaptersOfSucceededJobsAgain) {
  FakeInference inference;
  inference.models = {api::ModelInfo{"base", model_dir_, "cpu"}};
  StartManager(&inference);
  Plan("kept", {{"steps", 2}});
  JobStatus s = WaitState(Submit(Spec("kept")), JobState::kSucceeded);
  manager_.reset();
  FakeInference restarted;
  restarted.models = inference.models;
  StartManager(&restarted);
  ASSERT_EQ(restarted.loaded.size(), 1u);
  EXPECT_EQ(restarted.loaded[0].name, "kept");
  EXPECT_EQ(restarted.loaded[0].path, s.best_checkpoint);
  EXPECT_EQ(restarted.loaded[0].model, "base");
}

TEST_F(JobManagerTest, UnservedBaseModelIsNotedNotFailed) {
  FakeInference inference;  // serves nothing
  StartManager(&inference);
  Plan("lonely", {{"steps", 2}});
  std::string id = Submit(Spec("lonely"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_TRUE(inference.loaded.empty());
  EXPECT_TRUE(Contains(s.reason, "not served under any name")) << s.reason;
}

TEST_F(JobManagerTest, SigkilledWorkerResumesFromLastCheckpoint) {
  StartManager();
  Plan("crashy", {{"steps", 8}, {"crash_attempts", {1}}, {"crash_step", 5}});
  std::string id = Submit(Spec("crashy"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.step, 8);
  std::vector<std::string> attempts = Attempts(s);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(Contains(attempts[1], "attempt=2 resume=" + JoinPath(s.job_dir, "checkpoint-4")))
      << attempts[1];
  // job.json on disk carries the resume point the worker used.
  auto spec = JobSpec::FromJson(*ReadFile(JoinPath(s.job_dir, "job.json")), "job.json");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->resume_from_checkpoint, JoinPath(s.job_dir, "checkpoint-4"));
}

TEST_F(JobManagerTest, FailsAfterMaxAttemptsWithReason) {
  StartManager();
  Plan("doomed",
       {{"steps", 5}, {"crash_attempts", {1, 2, 3}}, {"crash_step", 1}, {"crash_how", "exit1"}});
  std::string id = Submit(Spec("doomed"));
  JobStatus s = WaitState(id, JobState::kFailed);
  EXPECT_EQ(s.attempts, 3);
  EXPECT_TRUE(Contains(s.reason, "exit code 1 on attempt 3 of 3")) << s.reason;
  EXPECT_TRUE(Contains(s.reason, "simulated error")) << s.reason;
  EXPECT_TRUE(Contains(s.reason, "test worker: crashing at step 1")) << s.reason;
  EXPECT_EQ(Attempts(s).size(), 3u);
}

TEST_F(JobManagerTest, OutOfMemoryFailsWithTheWorkersMessageWithoutRetry) {
  StartManager();
  Plan("big", {{"steps", 5}, {"oom_step", 3}});
  std::string id = Submit(Spec("big"));
  JobStatus s = WaitState(id, JobState::kFailed);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_TRUE(Contains(s.reason, "CUDA out of memory at step 3 (batch_size 1, max_pixels 1003520)"))
      << s.reason;
  EXPECT_TRUE(Contains(s.reason, "exit code 4")) << s.reason;
}

TEST_F(JobManagerTest, CancelRunningStopsAfterTheCurrentStep) {
  StartManager();
  Plan("long", {{"steps", 10000}, {"step_ms", 20}});
  std::string id = Submit(Spec("long"));
  WaitFor(id, [](const JobStatus& s) { return s.state == JobState::kRunning && s.step >= 3; });
  auto cancelled = manager_->CancelJob(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  JobStatus s = WaitState(id, JobState::kCancelled);
  EXPECT_EQ(s.reason, "cancelled by request");
  EXPECT_LT(s.step, 10000);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_TRUE(PathExists(JoinPath(s.job_dir, "checkpoint-2")));  // checkpoints are kept
  auto again = manager_->CancelJob(id);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, CancelOfAWorkerThatIgnoresSigtermKillsItAfterTheGrace) {
  hooks_.stop_grace = std::chrono::milliseconds(500);
  StartManager();
  Plan("stubborn", {{"steps", 10000}, {"step_ms", 20}, {"ignore_sigterm", true}});
  std::string id = Submit(Spec("stubborn"));
  WaitFor(id, [](const JobStatus& s) { return s.step >= 1; });
  ASSERT_TRUE(manager_->CancelJob(id).ok());
  JobStatus s = WaitState(id, JobState::kCancelled);
  EXPECT_TRUE(Contains(s.reason, "killed by SIGKILL")) << s.reason;
}

TEST_F(JobManagerTest, CancelQueuedJobAtOnce) {
  StartManager();  // one CPU slot
  Plan("first", {{"steps", 10000}});
  std::string first = Submit(Spec("first"));
  WaitState(first, JobState::kRunning);
  std::string second = Submit(Spec("second"));
  WaitState(second, JobState::kQueued);
  auto s = manager_->CancelJob(second);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->state, JobState::kCancelled);
  EXPECT_EQ(s->reason, "cancelled by request while queued");
  EXPECT_EQ(s->attempts, 0);
  EXPECT_EQ(manager_->GetJob(first)->state, JobState::kRunning);
  EXPECT_EQ(manager_->CancelJob("sft-nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(manager_->CancelJob(first).ok());
  WaitState(first, JobState::kCancelled);
}

// Reads "start|end NAME MS" lines written by test workers.
std::map<std::string, std::pair<int64_t, int64_t>> Timeline(const std::string& path) {
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  std::ifstream in(path);
  std::string what, name;
  int64_t ms;
  while (in >> what >> name >> ms) (what == "start" ? out[name].first : out[name].second) = ms;
  return out;
}

TEST_F(JobManagerTest, OneCpuSlotRunsJobsOneAfterTheOther) {
  StartManager();
  Plan("cpu-a", {{"steps", 8}, {"step_ms", 30}});
  Plan("cpu-b", {{"steps", 8}, {"step_ms", 30}});
  std::string a = Submit(Spec("cpu-a"));
  std::string b = Submit(Spec("cpu-b"));
  WaitState(a, JobState::kSucceeded);
  WaitState(b, JobState::kSucceeded);
  auto t = Timeline(timeline_);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_LE(t["cpu-a"].second, t["cpu-b"].first) << "cpu-b started before cpu-a ended";
}

TEST_F(JobManagerTest, DisjointGpuSetsRunTogetherWhileAThirdJobWaits) {
  config_.training_gpus = {4, 5, 7};  // fake device ids: no GPU is needed to test the pool
  StartManager();
  Plan("two", {{"steps", 10000}});
  Plan("one", {{"steps", 10000}});
  Plan("third", {{"steps", 2}});
  std::string two = Submit(Spec("two", 2));
  WaitState(two, JobState::kRunning);
  std::string one = Submit(Spec("one", 1));
  WaitState(one, JobState::kRunning);
  std::string third = Submit(Spec("third", 2));
  WaitState(third, JobState::kQueued);
  JobStatus s_two = *manager_->GetJob(two), s_one = *manager_->GetJob(one);
  EXPECT_EQ(s_two.gpus, (std::vector<int>{4, 5}));
  EXPECT_EQ(s_one.gpus, (std::vector<int>{7}));
  api::JobStats stats = manager_->Stats();
  EXPECT_EQ(stats.training_gpus_total, 3);
  EXPECT_EQ(stats.training_gpus_busy, 3);
  EXPECT_EQ(stats.queue_length, 1);
  EXPECT_EQ(stats.jobs_by_state["RUNNING"], 2);
  EXPECT_EQ(stats.running.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(manager_->GetJob(third)->state, JobState::kQueued);
  WaitFor(two, [](const JobStatus& s) { return s.step >= 1; });
  WaitFor(one, [](const JobStatus& s) { return s.step >= 1; });
  EXPECT_TRUE(absl::StrContains(Attempts(*manager_->GetJob(two))[0], "cuda=4,5 "));
  EXPECT_TRUE(absl::StrContains(Attempts(*manager_->GetJob(one))[0], "cuda=7 "));
  ASSERT_TRUE(manager_->CancelJob(two).ok());
  JobStatus s_third = WaitState(third, JobState::kSucceeded);
  EXPECT_TRUE(absl::StrContains(Attempts(s_third)[0], "cuda=4,5 ")) << Attempts(s_third)[0];
  ASSERT_TRUE(manager_->CancelJob(one).ok());
  WaitState(one, JobState::kCancelled);
}

TEST_F(JobManagerTest, JobAskingMoreGpusThanThePoolFailsValidation) {
  config_.training_gpus = {0, 1};
  StartManager();
  std::string id = Submit(Spec("greedy", 4));
  JobStatus s = WaitState(id, JobState::kFailed);
  EXPECT_TRUE(Contains(s.reason, "asks for 4 GPUs but the training pool has 2 (GPUs 0,1)"))
      << s.reason;
  EXPECT_EQ(s.attempts, 0);
}

TEST_F(JobManagerTest, CpuJobWithoutCpuSlotsFailsValidation) {
  config_.cpu_slots = 0;
  config_.training_gpus = {0};
  StartManager();
  JobStatus s = WaitState(Submit(Spec("cpu")), JobState::kFailed);
  EXPECT_TRUE(Contains(s.reason, "cpu_slots 0")) << s.reason;
}

TEST_F(JobManagerTest, DataValidationFailureFailsTheJobBeforeAnyWorker) {
  hooks_.check_data = [](const JobSpec&, const std::atomic<bool>&) -> StatusOr<DataCheckResult> {
    return absl::InvalidArgumentError(
        "/data/train.jsonl:17: \"images\" must be a list (3 bad lines)");
  };
  StartManager();
  JobStatus s = WaitState(Submit(Spec("baddata")), JobState::kFailed);
  EXPECT_EQ(s.reason, "/data/train.jsonl:17: \"images\" must be a list (3 bad lines)");
  EXPECT_EQ(s.attempts, 0);
}

TEST_F(JobManagerTest, NamedDataSetBecomesItsFolderAndTheWorkerGetsTheDataRoot) {
  config_.data_root = JoinPath(root_, "datasets");
  ASSERT_TRUE(MakeDirs(JoinPath(config_.data_root, "latex-ocr-print")).ok());
  hooks_.resolve_dataset = [root = config_.data_root](const std::string& entry) {
    return StatusOr<std::string>(entry == "latex-ocr-print" ? JoinPath(root, entry) : entry);
  };
  StartManager();
  JobSpec spec = Spec("named");
  spec.datasets = {"latex-ocr-print"};
  JobStatus s = WaitState(Submit(spec), JobState::kSucceeded);
  EXPECT_EQ(s.spec.datasets,
            std::vector<std::string>{JoinPath(config_.data_root, "latex-ocr-print")});
  std::vector<std::string> attempts = Attempts(s);
  ASSERT_FALSE(attempts.empty());
  EXPECT_TRUE(Contains(attempts[0], "data_root=" + config_.data_root + " ")) << attempts[0];
}

TEST_F(JobManagerTest, SubmissionErrorsNameTheField) {
  StartManager();
  JobSpec bad = Spec("bad");
  bad.learning_rate = 2;
  EXPECT_EQ(manager_->StartSftJob(bad).status().code(), absl::StatusCode::kInvalidArgument);
  JobSpec outside = Spec("outside");
  outside.datasets = {"/etc/passwd"};
  auto s = manager_->StartSftJob(outside);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(std::string(s.status().message()), "dataset")) << s.status();
  JobSpec missing = Spec("missing");
  missing.model = JoinPath(root_, "no-such-model");
  EXPECT_EQ(manager_->StartSftJob(missing).status().code(), absl::StatusCode::kNotFound);
  JobSpec bad_name = Spec("a b");
  EXPECT_EQ(manager_->StartSftJob(bad_name).status().code(), absl::StatusCode::kInvalidArgument);
  Plan("dup", {{"steps", 10000}});
  std::string dup = Submit(Spec("dup"));
  EXPECT_EQ(manager_->StartSftJob(Spec("dup")).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(manager_->CancelJob(dup).ok());
}

TEST_F(JobManagerTest, MissingWorkerBinaryFailsTheJobWithTheReason) {
  config_.worker_binary = JoinPath(root_, "no-such-vlmd");
  StartManager();
  std::string id = Submit(Spec("nobinary"));
  JobStatus s = WaitState(id, JobState::kFailed);
  EXPECT_TRUE(Contains(s.reason, "cannot start worker " + config_.worker_binary)) << s.reason;
  EXPECT_TRUE(Contains(s.reason, "No such file or directory")) << s.reason;
}

TEST_F(JobManagerTest, StrayStdoutLinesGoToTheLogAndOnlyTheFirstOnesBecomeEvents) {
  StartManager();
  Plan("chatty", {{"steps", 1}, {"stray_lines", 1500}});
  std::string id = Submit(Spec("chatty"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  std::string log = *ReadFile(JoinPath(s.job_dir, "worker.log"));
  EXPECT_TRUE(Contains(log, "stdout: stray output 1499")) << log.substr(0, 200);
  int64_t stray_events = 0;
  std::atomic<bool> done{false};
  auto watch = manager_->WatchJob(id, 0, [&](const api::JobEvent& e) {
    stray_events += absl::StartsWith(e.message, "stray output");
    if (e.type == api::JobEvent::Type::kState && api::IsTerminal(e.status.state)) done = true;
    return true;
  });
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 500 && !done; ++i) usleep(10000);
  watch->reset();
  EXPECT_EQ(stray_events, 1000);
}

TEST_F(JobManagerTest, JobDirectoryIsPrivateToTheGroup) {
  StartManager();
  Plan("perm", {{"steps", 1}});
  std::string id = Submit(Spec("perm"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  struct stat st;
  ASSERT_EQ(stat(s.job_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750);
  EXPECT_EQ(s.job_dir, JoinPath(config_.state_dir, "jobs/" + id));
}

}  // namespace
}  // namespace vlmd::jobs
