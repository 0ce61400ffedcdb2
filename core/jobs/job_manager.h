// JobManager: the implementation of api::JobService. One control thread owns scheduling and
// worker exits; one validator thread checks data sets; one monitor thread per running worker
// turns its stdout into status updates and events. All job state lives in `jobs_` under `mu_`
// and is written through to the JobStore (SQLite) before `mu_` is released, so the database
// always holds what GetJob reports and a watcher that sees a terminal state has every event.
//
// Retry policy: a worker that dies by a signal or exits with a code other than 0 (success),
// 3 (cancelled) or 4 (out of memory) is started again from its last complete checkpoint, on
// the same GPUs, while attempts < max_attempts; then the job FAILS with the exit description
// and the tail of worker.log. OOM (4) is not retried: the same batch would fail again.
//
// Recovery policy (Create): SUCCEEDED jobs' best adapters are served again; QUEUED jobs stay
// queued; VALIDATING jobs are validated again;
// RUNNING jobs whose worker is gone resume from their last complete checkpoint (an attempt).
// A worker still alive from the previous server process cannot be re-piped or reaped (it is
// not our child, so its exit code would be lost): it gets SIGTERM (SIGKILL after the grace),
// keeps its GPUs until it is gone, and the job then resumes from its last checkpoint like
// after a crash. That loses at most save_steps of work and never runs two workers of a job.
// A worker that ended while no server ran leaves no exit code: if its own progress.jsonl ends
// with a SUCCEEDED state line, the job succeeds without another attempt.
//
// Shutdown(stop_workers=true) sends SIGTERM and requeues the stopped jobs (no attempt used);
// they continue from their last checkpoint when a server starts on the state directory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/api/jobs.h"
#include "core/jobs/job_store.h"
#include "core/jobs/worker_monitor.h"
#include "core/jobs/worker_process.h"
#include "core/jobs/worker_report.h"
#include "core/train/merge.h"

namespace vlmd::jobs {

// What the background validation found.
struct DataCheckResult {
  int64_t train_samples = 0, val_samples = 0, skipped_samples = 0;
  std::string report;  // human-readable summary
};

// Pieces that JobService::Create takes from other parts of core and tests replace.
struct JobManagerHooks {
  // Parses every data line and image header of a resolved spec. An error's message becomes
  // the FAILED reason ("file:line: reason"). `stop` turns true at shutdown.
  std::function<StatusOr<DataCheckResult>(const JobSpec& spec, const std::atomic<bool>& stop)>
      check_data;
  // Maps a data set entry (a file, or latex-ocr-print / latex-ocr-handwrite) to a path.
  std::function<StatusOr<std::string>(const std::string& entry)> resolve_dataset;
  // Merges an adapter into its base checkpoint (vlmd::MergeAdapter).
  std::function<StatusOr<MergeStats>(const MergeOptions& options)> merge;
  // Time a worker gets between SIGTERM and SIGKILL (cancel, shutdown, recovery).
  std::chrono::milliseconds stop_grace{60000};
};

class JobManager : public api::JobService {
 public:
  // See api::JobService::Create. Fails if the state directory is used by another process.
  static StatusOr<std::unique_ptr<JobManager>> Create(const api::JobServiceConfig& config,
                                                      api::InferenceService* inference,
                                                      JobManagerHooks hooks);
  ~JobManager() override;

  StatusOr<api::JobStatus> StartSftJob(JobSpec spec) override;
  StatusOr<api::JobStatus> GetJob(const std::string& id) const override;
  std::vector<api::JobStatus> ListJobs(std::optional<api::JobState> state) const override;
  StatusOr<api::JobStatus> CancelJob(const std::string& id) override;
  StatusOr<std::unique_ptr<Watch>> WatchJob(const std::string& id, int64_t from_seq,
                                            std::function<bool(const api::JobEvent&)> on_event,
                                            std::function<void()> on_end = nullptr) override;
  StatusOr<api::MergeResult> MergeLora(const api::MergeRequest& request) override;
  api::JobStats Stats() const override;
  void Shutdown(bool stop_workers) override;

 private:
  struct Job {
    JobRecord record;
    std::unique_ptr<WorkerMonitor> monitor;  // while our child runs
    bool cancel_requested = false;
    // A worker left by a previous server process (not our child: polled, not reaped).
    bool foreign = false;
    // Reaped, exit not handled yet: its pid may already belong to another process.
    bool exited = false;
    // SIGKILL deadline after SIGTERM (cancel, shutdown, recovery); zero when none.
    std::chrono::steady_clock::time_point kill_at{};
    // Message of the worker's last FAILED state line (e.g. the out-of-memory report).
    std::string worker_failure;
    // Stray (non-protocol) stdout lines of the current attempt; only the first ones become
    // events, all go to worker.log.
    int64_t raw_lines = 0;
  };
  struct Exit {
    std::string id;
    int pid = 0;
    int wait_status = -1;  // -1: the worker was not our child (lost or foreign)
    std::string what;      // description when wait_status is -1
  };
  // One WatchJob call: its cursor and callback. `running` is guarded by EventBus::mu.
  struct WatchState {
    std::string id;
    int64_t last_seq = 0;
    std::function<bool(const api::JobEvent&)> on_event;
    std::function<void()> on_end;
    std::atomic<bool> stop{false};
    bool running = true;
  };
  // Wakes watchers after each persisted event.
  struct EventBus {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t generation = 0;
    std::set<std::shared_ptr<WatchState>> watches;
  };
  class WatchImpl;

  JobManager(api::JobServiceConfig config, api::InferenceService* inference, JobManagerHooks hooks,
             std::unique_ptr<JobStore> store, int lock_fd);
  Status Recover();
  void RecoverRunning(Job& job);
  void StartThreads();

  // Persists `job` (and `event` when set) and wakes watchers. Requires mu_.
  void Persist(Job& job, const NewEvent* event);
  void SetState(Job& job, api::JobState state, const std::string& message,
                const std::string& reason);
  Job* FindLocked(const std::string& id);
  const Job* FindLocked(const std::string& id) const;
  // Signals the job's worker process group unless the worker was already reaped.
  void SignalWorkerLocked(Job& job, int sig);

  // Submission (job_submit.cc).
  Status ResolveSpec(JobSpec* spec) const;
  // FAILED_PRECONDITION when the job can never be placed (more GPUs than the pool, CPU job
  // without CPU slots).
  Status CheckResources(const JobSpec& spec) const;
  void ValidatorLoop();
  void FinishValidation(const std::string& id, const StatusOr<DataCheckResult>& result);

  // Control thread (job_runner.cc).
  void ControlLoop();
  void ScheduleLocked();
  void LaunchLocked(Job& job, const std::vector<int>& gpus);
  // Writes job.json (with the resume point) and starts the worker process.
  StatusOr<WorkerProcess> SpawnLocked(Job& job, const std::vector<int>& gpus,
                                      const std::string& where);
  void OnWorkerLine(const std::string& id, const std::string& line);
  void OnWorkerExit(const std::string& id, int pid, int wait_status);
  void HandleExitLocked(std::unique_lock<std::mutex>& lock, const Exit& exit);
  // Succeeds, cancels, fails, requeues or restarts `job` after its worker ended.
  void DecideAfterExitLocked(std::unique_lock<std::mutex>& lock, Job& job, const Exit& exit);
  void RetryOrFailLocked(Job& job, const std::string& what);
  void RequeueLocked(Job& job, const std::string& message);
  void SucceedLocked(std::unique_lock<std::mutex>& lock, Job& job);
  // Loads the best adapter into the inference service. Returns "" on success (or without an
  // inference service), else why it was not registered.
  std::string RegisterAdapter(const api::JobStatus& status);
  // At start: serves the best adapter of every job that succeeded before (a restart keeps
  // finished jobs' adapters available under their names). Problems are logged.
  void RegisterSucceededAdapters();
  void WaitForWorkersToStop();

  // Merges (merge_lora.cc).
  StatusOr<std::string> CheckpointOfJob(const std::string& job_id, const std::string& which,
                                        std::string* model) const;
  StatusOr<MergeOptions> ResolveMerge(const api::MergeRequest& request) const;

  // Watches (job_watch.cc).
  void WatchLoop(const std::shared_ptr<WatchState>& state);
  static bool Deliver(WatchState& state, const api::JobEvent& event);
  static void EndOfWatch(WatchState& state);
  void NotifyWatchers();
  void StopWatches();
  void CheckDeadlinesLocked();
  std::set<int> BusyGpusLocked() const;
  int BusyCpuSlotsLocked() const;

  const api::JobServiceConfig config_;
  api::InferenceService* const inference_;
  const JobManagerHooks hooks_;
  std::unique_ptr<JobStore> store_;
  int lock_fd_;

  mutable std::mutex mu_;
  std::condition_variable control_cv_;   // wakes the control thread
  std::condition_variable validate_cv_;  // wakes the validator
  std::map<std::string, Job> jobs_;
  std::deque<std::string> to_validate_;
  std::deque<Exit> exits_;
  bool stopping_ = false;  // Shutdown started: no new jobs, no scheduling
  bool stopping_workers_ = false;
  bool shut_down_ = false;
  std::atomic<bool> stop_validation_{false};
  std::thread control_thread_, validator_thread_;

  // Watchers wait on the bus; shared with their handles, which may outlive the manager.
  std::shared_ptr<EventBus> bus_;
};

}  // namespace vlmd::jobs
