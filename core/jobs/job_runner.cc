// JobManager: the control thread (scheduling, worker starts, exits, retries, deadlines) and
// the handlers the worker monitors call.
#include <signal.h>
#include <sys/wait.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/api/worker.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/jobs/job_manager.h"
#include "core/jobs/scheduler.h"
#include "core/jobs/worker_process.h"

namespace vlmd::jobs {
namespace {

using api::JobState;
using api::JobStatus;
using Clock = std::chrono::steady_clock;

constexpr int kLogTailLines = 20;
constexpr int64_t kMaxRawLineEvents = 1000;  // per attempt; a chatty worker cannot flood the db

std::string LogPath(const JobStatus& s) { return JoinPath(s.job_dir, "worker.log"); }

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void AppendToLog(const std::string& path, const std::string& line) {
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return;
  std::fprintf(f, "%s\n", line.c_str());
  std::fclose(f);
}

}  // namespace

void JobManager::StartThreads() {
  control_thread_ = std::thread([this] { ControlLoop(); });
  validator_thread_ = std::thread([this] { ValidatorLoop(); });
}

void JobManager::ControlLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    while (!exits_.empty()) {
      Exit exit = std::move(exits_.front());
      exits_.pop_front();
      HandleExitLocked(lock, exit);
    }
    CheckDeadlinesLocked();
    if (shut_down_) return;
    ScheduleLocked();
    control_cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

std::set<int> JobManager::BusyGpusLocked() const {
  std::set<int> busy;
  for (const auto& [id, job] : jobs_) {
    if (job.record.status.state != JobState::kRunning) continue;
    busy.insert(job.record.status.gpus.begin(), job.record.status.gpus.end());
  }
  return busy;
}

int JobManager::BusyCpuSlotsLocked() const {
  int busy = 0;
  for (const auto& [id, job] : jobs_) {
    const JobStatus& s = job.record.status;
    busy += s.state == JobState::kRunning && s.spec.gpus == 0;
  }
  return busy;
}

void JobManager::ScheduleLocked() {
  if (stopping_) return;
  std::vector<QueuedJob> queue;
  for (const auto& [id, job] : jobs_) {
    const JobStatus& s = job.record.status;
    if (s.state == JobState::kQueued)
      queue.push_back({id, s.spec.gpus, s.spec.priority, job.record.seq});
  }
  if (queue.empty()) return;
  FreeResources free;
  free.total_gpus = static_cast<int>(config_.training_gpus.size());
  std::set<int> busy = BusyGpusLocked();
  for (int g : config_.training_gpus) {
    if (!busy.count(g)) free.gpus.insert(g);
  }
  free.cpu_slots = std::max(0, config_.cpu_slots - BusyCpuSlotsLocked());
  for (const Placement& p : Schedule(std::move(queue), free)) {
    LaunchLocked(jobs_.at(p.id), p.gpus);
  }
}

StatusOr<WorkerProcess> JobManager::SpawnLocked(Job& job, const std::vector<int>& gpus,
                                                const std::string& where) {
  JobStatus& s = job.record.status;
  std::string checkpoint = LastCompleteCheckpoint(s.job_dir);
  if (!checkpoint.empty()) s.spec.resume_from_checkpoint = checkpoint;
  s.spec.output_dir = s.job_dir;
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(s.job_dir, "job.json"), s.spec.ToJson()));
  AppendToLog(LogPath(s), absl::StrCat("==== ", UtcNow(), " vlmd: attempt ", s.attempts + 1, " on ",
                                       where, " ===="));
  // The worker resolves data set names (latex-ocr-print, ...) under the server's data root.
  std::vector<std::pair<std::string, std::string>> env;
  if (!config_.data_root.empty()) env.emplace_back("VLMD_DATA_ROOT", config_.data_root);
  return LaunchWorker({config_.worker_binary, s.job_dir, gpus, LogPath(s), std::move(env)});
}

void JobManager::LaunchLocked(Job& job, const std::vector<int>& gpus) {
  JobStatus& s = job.record.status;
  const std::string where = gpus.empty() ? "the CPU" : absl::StrCat("GPUs ", GpuList(gpus));
  StatusOr<WorkerProcess> worker = SpawnLocked(job, gpus, where);
  if (!worker.ok()) {
    SetState(job, JobState::kFailed, std::string(worker.status().message()),
             absl::StrCat("could not start the worker: ", worker.status().message()));
    return;
  }
  ++s.attempts;
  s.gpus = gpus;
  if (s.started_unix == 0) s.started_unix = std::time(nullptr);
  job.record.pid = worker->pid;
  job.worker_failure.clear();
  job.raw_lines = 0;
  job.kill_at = {};
  const std::string id = s.id;
  const int pid = worker->pid;
  job.monitor = std::make_unique<WorkerMonitor>(
      pid, worker->stdout_fd, [this, id](const std::string& line) { OnWorkerLine(id, line); },
      [this, id, pid](int status) { OnWorkerExit(id, pid, status); });
  std::string message = absl::StrCat("worker pid ", pid, " on ", where, " (attempt ", s.attempts,
                                     " of ", config_.max_attempts, ")");
  if (!s.spec.resume_from_checkpoint.empty()) {
    absl::StrAppend(&message, ", resuming from ", s.spec.resume_from_checkpoint);
  }
  SetState(job, JobState::kRunning, message, "");
}

void JobManager::OnWorkerLine(const std::string& id, const std::string& line) {
  WorkerReport report = ParseWorkerLine(line);
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = FindLocked(id);
  if (job == nullptr || job->record.status.state != JobState::kRunning) return;
  if (report.kind == WorkerReport::Kind::kState && report.state == "FAILED") {
    job->worker_failure = report.message;
  }
  if (report.raw) {
    AppendToLog(LogPath(job->record.status), absl::StrCat("stdout: ", line));
    if (++job->raw_lines > kMaxRawLineEvents) return;
    if (job->raw_lines == kMaxRawLineEvents) {
      report.message = absl::StrCat(report.message, " (further stray stdout lines: worker.log)");
    }
  }
  NewEvent event = ApplyWorkerReport(report, &job->record.status);
  Persist(*job, &event);
}

void JobManager::OnWorkerExit(const std::string& id, int pid, int wait_status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Job* job = FindLocked(id); job != nullptr && job->record.pid == pid) job->exited = true;
  exits_.push_back({id, pid, wait_status, "worker lost (it was not our child)"});
  control_cv_.notify_all();
}

void JobManager::HandleExitLocked(std::unique_lock<std::mutex>& lock, const Exit& exit) {
  Job* job = FindLocked(exit.id);
  if (job == nullptr || job->record.status.state != JobState::kRunning ||
      job->record.pid != exit.pid) {
    return;
  }
  std::unique_ptr<WorkerMonitor> monitor = std::move(job->monitor);
  lock.unlock();
  monitor.reset();  // its thread has reported the exit and is ending
  lock.lock();
  job->record.pid = 0;
  job->foreign = false;
  job->exited = false;
  DecideAfterExitLocked(lock, *job, exit);
}

void JobManager::DecideAfterExitLocked(std::unique_lock<std::mutex>& lock, Job& job,
                                       const Exit& exit) {
  const int st = exit.wait_status;
  const bool exited = st != -1 && WIFEXITED(st);
  const int code = exited ? WEXITSTATUS(st) : -1;
  const std::string what = st == -1 ? exit.what : DescribeWaitStatus(st);
  // A worker that was not our child (left by the previous server) leaves no exit code; its
  // own progress.jsonl says whether it finished.
  const bool finished_unseen = st == -1 && LastLoggedWorkerState(job.record.status.job_dir) ==
                                               api::JobStateName(JobState::kSucceeded);
  if ((exited && code == api::kWorkerOk) || finished_unseen) {
    SucceedLocked(lock, job);
  } else if (exited && code == api::kWorkerCancelled &&
             (job.cancel_requested || !stopping_workers_)) {
    SetState(job, JobState::kCancelled, "the worker stopped after its current step",
             job.cancel_requested ? "cancelled by request" : "the worker cancelled the job");
  } else if (exited && code == api::kWorkerOutOfMemory) {
    std::string detail = job.worker_failure.empty() ? "out of memory" : job.worker_failure;
    SetState(job, JobState::kFailed, detail,
             absl::StrCat(detail,
                          " (exit code 4; not retried: lower batch_size, max_length or "
                          "max_pixels, or give the job more GPU memory)"));
  } else if (job.cancel_requested) {
    SetState(job, JobState::kCancelled, what,
             absl::StrCat("cancelled by request; the worker ", what));
  } else if (stopping_workers_) {
    RequeueLocked(job, absl::StrCat("server shutting down (worker ", what,
                                    "); the job continues from its last checkpoint"));
  } else {
    RetryOrFailLocked(job, what);
  }
}

void JobManager::RequeueLocked(Job& job, const std::string& message) {
  job.record.status.gpus.clear();
  job.record.pid = 0;
  if (Status fits = CheckResources(job.record.status.spec); !fits.ok()) {
    SetState(job, JobState::kFailed, std::string(fits.message()),
             absl::StrCat(message, ", but the server's configuration changed: ", fits.message()));
    return;
  }
  SetState(job, JobState::kQueued, message, "");
}

void JobManager::RetryOrFailLocked(Job& job, const std::string& what) {
  JobStatus& s = job.record.status;
  if (s.attempts < config_.max_attempts) {
    std::string checkpoint = LastCompleteCheckpoint(s.job_dir);
    NewEvent event{api::JobEvent::Type::kLog,
                   absl::StrCat("worker ", what, "; restarting from ",
                                checkpoint.empty() ? "the beginning" : checkpoint, " (attempt ",
                                s.attempts + 1, " of ", config_.max_attempts, ")")};
    Persist(job, &event);
    std::set<int> pool(config_.training_gpus.begin(), config_.training_gpus.end());
    bool same_gpus_ok = !stopping_;
    for (int g : s.gpus) same_gpus_ok = same_gpus_ok && pool.count(g) > 0;
    if (same_gpus_ok && static_cast<int>(s.gpus.size()) == s.spec.gpus) {
      LaunchLocked(job, s.gpus);  // keeps the GPUs it holds
    } else {
      RequeueLocked(job, "waiting for GPUs to restart the worker");
    }
    return;
  }
  std::string tail = TailOfFile(LogPath(s), kLogTailLines);
  std::string reason =
      absl::StrCat("worker ", what, " on attempt ", s.attempts, " of ", config_.max_attempts);
  if (!job.worker_failure.empty()) absl::StrAppend(&reason, ": ", job.worker_failure);
  if (!tail.empty()) absl::StrAppend(&reason, "\nlast lines of ", LogPath(s), ":\n", tail);
  SetState(job, JobState::kFailed, absl::StrCat("worker ", what, "; no attempts left"), reason);
}

void JobManager::SucceedLocked(std::unique_lock<std::mutex>& lock, Job& job) {
  JobStatus& s = job.record.status;
  // The worker's last trainer_state.json is authoritative (it also covers progress that no
  // server saw); the checkpoint events are the fallback.
  const std::string last = LastCompleteCheckpoint(s.job_dir);
  const TrainerStateInfo state = ReadTrainerState(last);
  if (!state.best_checkpoint.empty() && PathExists(state.best_checkpoint)) {
    s.best_checkpoint = state.best_checkpoint;
  } else if (s.best_checkpoint.empty() || !PathExists(s.best_checkpoint)) {
    s.best_checkpoint = last;
  }
  s.step = std::max(s.step, state.global_step);
  s.max_steps = std::max(s.max_steps, state.max_steps);
  for (api::CheckpointInfo& c : s.checkpoints) c.best = c.path == s.best_checkpoint;
  JobStatus snapshot = s;
  lock.unlock();
  std::string not_registered = RegisterAdapter(snapshot);
  lock.lock();
  std::string message = absl::StrCat("training finished; best checkpoint ",
                                     s.best_checkpoint.empty() ? "(none)" : s.best_checkpoint);
  if (!not_registered.empty()) {
    absl::StrAppend(&message, "; ", not_registered);
  } else if (inference_ != nullptr) {
    absl::StrAppend(&message, "; served as adapter \"", s.name, "\"");
  }
  SetState(job, JobState::kSucceeded, message, not_registered);
}

void JobManager::CheckDeadlinesLocked() {
  const auto now = Clock::now();
  for (auto& [id, job] : jobs_) {
    if (job.record.status.state != JobState::kRunning || job.record.pid <= 0) continue;
    if (job.foreign && !ProcessAlive(job.record.pid)) {
      exits_.push_back(
          {id, job.record.pid, -1,
           absl::StrCat("pid ", job.record.pid, " (left by the previous server process) stopped")});
      job.foreign = false;
      job.kill_at = {};
      control_cv_.notify_all();
      continue;
    }
    if (job.kill_at != Clock::time_point{} && now >= job.kill_at) {
      VLMD_LOG(Warning) << "job " << id << ": worker pid " << job.record.pid
                        << " did not stop in time; sending SIGKILL";
      SignalWorkerLocked(job, SIGKILL);
      job.kill_at = now + hooks_.stop_grace;
    }
  }
}

}  // namespace vlmd::jobs
