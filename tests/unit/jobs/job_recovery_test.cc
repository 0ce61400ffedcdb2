// JobManager across restarts (same state directory), event watches, and MergeLora.
#include <signal.h>

#include <mutex>

#include "absl/strings/match.h"
#include "core/jobs/worker_process.h"
#include "job_test_util.h"

namespace vlmd::jobs {
namespace {

using api::JobEvent;
using api::JobState;
using api::JobStatus;

// Watches job `id` from `from_seq` until its terminal state event (or 10 s) and returns the
// events received.
std::vector<JobEvent> Collect(api::JobService* service, const std::string& id, int64_t from_seq) {
  std::vector<JobEvent> events;
  std::mutex mu;
  std::atomic<bool> done{false};
  auto watch = service->WatchJob(id, from_seq, [&](const JobEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    if (e.type == JobEvent::Type::kState && api::IsTerminal(e.status.state)) done = true;
    return true;
  });
  EXPECT_TRUE(watch.ok()) << watch.status();
  for (int i = 0; i < 1000 && !done; ++i) usleep(10000);
  EXPECT_TRUE(done) << "no terminal event for " << id;
  watch->reset();
  std::lock_guard<std::mutex> lock(mu);
  return events;
}

TEST_F(JobManagerTest, RestartKeepsQueuedAndResumesRunningWhoseWorkerDied) {
  StartManager();
  Plan("r-run", {{"steps", 40}, {"step_ms", 50}});
  Plan("r-queued", {{"steps", 2}});
  std::string run = Submit(Spec("r-run"));
  std::string queued = Submit(Spec("r-queued"));
  JobStatus before = WaitFor(run, [](const JobStatus& s) { return s.step >= 5; });
  WaitState(queued, JobState::kQueued);
  (void)before;
  int pid = 0;
  manager_.reset();  // Shutdown(false): the worker is left running...
  {
    auto store = JobStore::Open(JoinPath(config_.state_dir, "jobs.db"));
    ASSERT_TRUE(store.ok());
    auto records = (*store)->LoadAll();
    ASSERT_TRUE(records.ok());
    for (const JobRecord& r : *records) {
      if (r.status.id == run) pid = r.pid;
    }
  }
  ASSERT_GT(pid, 0);
  kill(-pid, SIGKILL);  // ...and then killed
  for (int i = 0; i < 100 && ProcessAlive(pid); ++i) usleep(20000);
  StartManager();
  EXPECT_EQ(manager_->GetJob(queued)->state, JobState::kQueued);
  JobStatus s = WaitState(run, JobState::kSucceeded, 30);
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.step, 40);
  std::vector<std::string> attempts = Attempts(s);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(absl::StrContains(attempts[1], "resume=" + s.job_dir + "/checkpoint-"))
      << attempts[1];
  EXPECT_FALSE(absl::StrContains(attempts[1], "resume= ")) << attempts[1];
  WaitState(queued, JobState::kSucceeded);
}

TEST_F(JobManagerTest, RestartStopsAWorkerLeftRunningAndResumesIt) {
  StartManager();
  // The worker survives the loss of its stdout reader (it ignores SIGPIPE), as a worker left
  // behind by a server that was stopped without stopping its workers.
  Plan("left", {{"steps", 30}, {"step_ms", 50}, {"ignore_sigpipe", true}});
  std::string id = Submit(Spec("left"));
  WaitFor(id, [](const JobStatus& s) { return s.step >= 4; });
  manager_.reset();
  StartManager();
  JobStatus s = WaitState(id, JobState::kSucceeded, 30);
  EXPECT_EQ(s.attempts, 2);
  std::vector<std::string> attempts = Attempts(s);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(absl::StrContains(attempts[1], "resume=" + s.job_dir + "/checkpoint-"));
  // The history says what happened.
  std::vector<JobEvent> events = Collect(manager_.get(), id, 0);
  bool stopped = false;
  for (const JobEvent& e : events) {
    stopped = stopped || absl::StrContains(e.message, "left by the previous server process");
  }
  EXPECT_TRUE(stopped);
}

TEST_F(JobManagerTest, WorkerThatFinishedWhileNoServerRanCountsAsSucceeded) {
  StartManager();
  Plan("unseen", {{"steps", 12}, {"step_ms", 40}, {"ignore_sigpipe", true}});
  std::string id = Submit(Spec("unseen"));
  JobStatus before = WaitFor(id, [](const JobStatus& s) { return s.step >= 2; });
  manager_.reset();
  // The worker goes on without a reader and finishes (its progress.jsonl says so).
  for (int i = 0; i < 500 && LastLoggedWorkerState(before.job_dir) != "SUCCEEDED"; ++i) {
    usleep(10000);
  }
  ASSERT_EQ(LastLoggedWorkerState(before.job_dir), "SUCCEEDED");
  StartManager();
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.best_checkpoint, JoinPath(s.job_dir, "checkpoint-12"));
  EXPECT_EQ(Attempts(s).size(), 1u);
}

TEST_F(JobManagerTest, RestartWithStopWorkersRequeuesWithoutUsingAnAttempt) {
  StartManager();
  Plan("stopped", {{"steps", 12}, {"step_ms", 40}});
  std::string id = Submit(Spec("stopped"));
  WaitFor(id, [](const JobStatus& s) { return s.step >= 3; });
  manager_->Shutdown(/*stop_workers=*/true);
  JobStatus mid = *manager_->GetJob(id);
  EXPECT_EQ(mid.state, JobState::kQueued);
  EXPECT_EQ(mid.attempts, 1);
  manager_.reset();
  StartManager();
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_EQ(s.attempts, 2);
  EXPECT_TRUE(absl::StrContains(Attempts(s)[1], "resume=" + s.job_dir + "/checkpoint-"));
}

TEST_F(JobManagerTest, RestartValidatesAgainAJobCaughtValidating) {
  std::atomic<int> calls{0};
  std::atomic<bool> block{true};
  hooks_.check_data = [&](const JobSpec&,
                          const std::atomic<bool>& stop) -> StatusOr<DataCheckResult> {
    ++calls;
    while (block && !stop) usleep(5000);
    if (stop) return absl::CancelledError("shutting down");
    return DataCheckResult{5, 1, 2, "ok"};
  };
  StartManager();
  Plan("v", {{"steps", 2}});
  std::string id = Submit(Spec("v"));
  for (int i = 0; i < 200 && calls == 0; ++i) usleep(5000);
  manager_.reset();  // interrupts the validation: the job stays VALIDATING in the database
  block = false;
  StartManager();
  JobStatus s = WaitState(id, JobState::kSucceeded);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(s.skipped_samples, 2);
}

TEST_F(JobManagerTest, RestartWithASmallerPoolFailsJobsThatNoLongerFit) {
  config_.training_gpus = {0, 1};
  StartManager();
  Plan("wide", {{"steps", 10000}});
  std::string running = Submit(Spec("wide", 2));
  WaitState(running, JobState::kRunning);
  std::string queued = Submit(Spec("wide2", 2));
  WaitState(queued, JobState::kQueued);
  int pid = 0;
  {
    auto store = JobStore::Open(JoinPath(config_.state_dir, "jobs.db"));
    ASSERT_TRUE(store.ok());
    auto records = (*store)->LoadAll();
    ASSERT_TRUE(records.ok());
    for (const JobRecord& r : *records) pid = r.status.id == running ? r.pid : pid;
  }
  manager_.reset();
  ASSERT_GT(pid, 0);
  kill(-pid, SIGKILL);
  for (int i = 0; i < 100 && ProcessAlive(pid); ++i) usleep(20000);
  config_.training_gpus = {1};
  StartManager();
  JobStatus q = WaitState(queued, JobState::kFailed);
  EXPECT_TRUE(absl::StrContains(q.reason, "configuration changed")) << q.reason;
  JobStatus r = WaitState(running, JobState::kFailed);
  EXPECT_TRUE(absl::StrContains(r.reason, "training pool has 1 (GPUs 1)")) << r.reason;
}

TEST_F(JobManagerTest, StateDirectoryIsLockedAgainstASecondServer) {
  StartManager();
  auto second = JobManager::Create(config_, nullptr, hooks_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "in use by another vlmd"));
}

TEST_F(JobManagerTest, WatchReplaysFromASeqThenStreamsLive) {
  StartManager();
  Plan("watched", {{"steps", 6}, {"step_ms", 40}});
  std::string id = Submit(Spec("watched"));
  std::vector<JobEvent> live;
  std::mutex mu;
  std::atomic<bool> done{false};
  auto watch = manager_->WatchJob(id, 0, [&](const JobEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    live.push_back(e);
    if (e.type == JobEvent::Type::kState && api::IsTerminal(e.status.state)) done = true;
    return true;
  });
  ASSERT_TRUE(watch.ok()) << watch.status();
  WaitState(id, JobState::kSucceeded);
  for (int i = 0; i < 200 && !done; ++i) usleep(10000);
  ASSERT_TRUE(done);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GT(live.size(), 10u);
  for (size_t i = 0; i < live.size(); ++i) EXPECT_EQ(live[i].seq, static_cast<int64_t>(i + 1));
  EXPECT_EQ(live.front().status.state, JobState::kValidating);
  EXPECT_EQ(live.back().status.state, JobState::kSucceeded);
  int train = 0, checkpoints = 0, states = 0;
  for (const JobEvent& e : live) {
    train += e.type == JobEvent::Type::kTrainMetrics;
    checkpoints += e.type == JobEvent::Type::kCheckpoint;
    states += e.type == JobEvent::Type::kState;
  }
  EXPECT_EQ(train, 6);
  EXPECT_EQ(checkpoints, 3);
  EXPECT_EQ(states, 4);  // VALIDATING, QUEUED, RUNNING, SUCCEEDED

  // Replay from the middle: exactly the later events, same content.
  const int64_t from = live[5].seq;
  std::vector<JobEvent> replay = Collect(manager_.get(), id, from);
  ASSERT_EQ(replay.size(), live.size() - 6);
  for (size_t i = 0; i < replay.size(); ++i) {
    EXPECT_EQ(replay[i].seq, live[i + 6].seq);
    EXPECT_EQ(replay[i].message, live[i + 6].message);
    EXPECT_EQ(replay[i].status.step, live[i + 6].status.step);
  }
  // A callback returning false stops the watch (and on_end is not called).
  std::atomic<int> seen{0}, stopped_end{0};
  auto stopper = manager_->WatchJob(
      id, 0, [&](const JobEvent&) { return ++seen < 3; }, [&] { ++stopped_end; });
  ASSERT_TRUE(stopper.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stopper->reset();
  EXPECT_EQ(seen, 3);
  EXPECT_EQ(stopped_end, 0);
  // on_end follows the last event of a finished job, also when from_seq is past the end.
  std::atomic<int> ended{0};
  std::atomic<int64_t> last_seen{0}, last_at_end{0};
  const int64_t last = live.back().seq;
  auto full = manager_->WatchJob(
      id, 0, [&](const JobEvent& e) { return (last_seen = e.seq), true; },
      [&] { last_at_end = last_seen.load(), ++ended; });
  auto past = manager_->WatchJob(
      id, last, [&](const JobEvent&) { return ADD_FAILURE(), true; }, [&] { ++ended; });
  ASSERT_TRUE(full.ok() && past.ok());
  for (int i = 0; i < 200 && ended < 2; ++i) usleep(10000);
  EXPECT_EQ(ended, 2);
  EXPECT_EQ(last_at_end, last);
  EXPECT_EQ(manager_->WatchJob("sft-none", 0, [](const JobEvent&) { return true; }).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, MergeResolvesJobCheckpointsAndChecksPaths) {
  FakeInference inference;
  inference.models = {api::ModelInfo{"base", model_dir_, "cuda:1"}};
  std::vector<MergeOptions> calls;
  hooks_.merge = [&](const MergeOptions& o) -> StatusOr<MergeStats> {
    calls.push_back(o);
    return MergeStats{10, 4, 1234, 0.5};
  };
  StartManager(&inference);
  Plan("m", {{"steps", 4}});
  std::string id = Submit(Spec("m"));
  JobStatus s = WaitState(id, JobState::kSucceeded);
  api::MergeRequest request;
  request.job_id = id;
  request.output_dir = JoinPath(root_, "merged");
  request.register_as = "m-merged";
  auto result = manager_->MergeLora(request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->merged_modules, 4);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].adapter_dir, s.best_checkpoint);
  EXPECT_EQ(calls[0].base_dir, model_dir_);
  EXPECT_EQ(calls[0].output_dir, JoinPath(root_, "merged"));
  ASSERT_EQ(inference.added.size(), 1u);
  EXPECT_EQ(inference.added[0].name, "m-merged");
  EXPECT_EQ(inference.added[0].device, "cuda:1");

  request.checkpoint = "2";
  request.register_as.clear();
  request.output_dir = JoinPath(root_, "merged2");
  ASSERT_TRUE(manager_->MergeLora(request).ok());
  EXPECT_EQ(calls.back().adapter_dir, JoinPath(s.job_dir, "checkpoint-2"));
  request.checkpoint = "3";
  EXPECT_EQ(manager_->MergeLora(request).status().code(), absl::StatusCode::kNotFound);
  request.checkpoint = "last";
  request.output_dir = "/etc/merged";
  EXPECT_EQ(manager_->MergeLora(request).status().code(), absl::StatusCode::kPermissionDenied);
  request.output_dir = s.job_dir;  // exists and is not empty
  EXPECT_EQ(manager_->MergeLora(request).status().code(), absl::StatusCode::kAlreadyExists);
  api::MergeRequest by_dir;
  by_dir.model = model_dir_;
  by_dir.adapter_dir = JoinPath(s.job_dir, "checkpoint-4");
  by_dir.output_dir = JoinPath(root_, "merged3");
  ASSERT_TRUE(manager_->MergeLora(by_dir).ok());
  EXPECT_EQ(calls.back().adapter_dir, JoinPath(s.job_dir, "checkpoint-4"));
}

}  // namespace
}  // namespace vlmd::jobs
