// JobManager: creation, recovery, persistence and the simple queries. Submission and
// validation are in job_submit.cc, workers and scheduling in job_runner.cc, watches in
// job_watch.cc, merges in merge_lora.cc.
#include "core/jobs/job_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/jobs/worker_process.h"

namespace vlmd::jobs {
namespace {

using api::JobState;
using api::JobStatus;

// Takes an exclusive lock on <state_dir>/jobs.lock, so two servers never run one queue.
StatusOr<int> LockStateDir(const std::string& state_dir) {
  std::string path = JoinPath(state_dir, "jobs.lock");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string owner(32, '\0');
    ssize_t n = pread(fd, owner.data(), owner.size(), 0);
    close(fd);
    owner.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", state_dir, " is in use by another vlmd (pid ", owner,
                     "); give each server its own state directory"));
  }
  std::string pid = std::to_string(getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    VLMD_LOG(Warning) << "cannot write the pid to " << path;
  }
  return fd;
}

Status CheckConfig(const api::JobServiceConfig& config) {
  if (config.state_dir.empty()) return absl::InvalidArgumentError("jobs: state_dir is required");
  std::set<int> seen;
  for (int g : config.training_gpus) {
    if (g < 0 || !seen.insert(g).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("jobs: training_gpus must be distinct device ids >= 0 (got ", g, ")"));
    }
  }
  if (config.cpu_slots < 0) return absl::InvalidArgumentError("jobs: cpu_slots must be >= 0");
  if (config.max_attempts < 1) {
    return absl::InvalidArgumentError("jobs: max_attempts must be >= 1");
  }
  return absl::OkStatus();
}

// Workers' exit codes are read with waitpid; with SIGCHLD ignored the kernel reaps children
// itself and every exit would look like a lost worker.
void EnsureChildrenAreReapable() {
  struct sigaction current {};
  if (sigaction(SIGCHLD, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
    VLMD_LOG(Warning) << "SIGCHLD was ignored; restoring the default so that worker exit codes "
                         "can be read";
    signal(SIGCHLD, SIG_DFL);
  }
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "/proc/self/exe";
}

}  // namespace

StatusOr<std::unique_ptr<JobManager>> JobManager::Create(const api::JobServiceConfig& config,
                                                         api::InferenceService* inference,
                                                         JobManagerHooks hooks) {
  RETURN_IF_ERROR(CheckConfig(config));
  RETURN_IF_ERROR(MakeDirs(JoinPath(config.state_dir, "jobs"), 0750));
  api::JobServiceConfig effective = config;
  // Absolute paths: job directories are handed to workers and matched against
  // /proc/<pid>/cmdline after a restart, whatever the working directory.
  ASSIGN_OR_RETURN(effective.state_dir, ResolveUnderRoots(config.state_dir, {"/"}));
  if (effective.worker_binary.empty()) effective.worker_binary = SelfExe();
  EnsureChildrenAreReapable();
  ASSIGN_OR_RETURN(int lock_fd, LockStateDir(effective.state_dir));
  auto store = JobStore::Open(JoinPath(effective.state_dir, "jobs.db"));
  if (!store.ok()) {
    close(lock_fd);
    return store.status();
  }
  std::unique_ptr<JobManager> manager(new JobManager(std::move(effective), inference,
                                                     std::move(hooks), std::move(*store), lock_fd));
  RETURN_IF_ERROR(manager->Recover());
  manager->RegisterSucceededAdapters();
  manager->StartThreads();
  return manager;
}

JobManager::JobManager(api::JobServiceConfig config, api::InferenceService* inference,
                       JobManagerHooks hooks, std::unique_ptr<JobStore> store, int lock_fd)
    : config_(std::move(config)),
      inference_(inference),
      hooks_(std::move(hooks)),
      store_(std::move(store)),
      lock_fd_(lock_fd),
      bus_(std::make_shared<EventBus>()) {}

JobManager::~JobManager() {
  Shutdown(/*stop_workers=*/false);
  close(lock_fd_);
}

Status JobManager::Recover() {
  ASSIGN_OR_RETURN(std::vector<JobRecord> records, store_->LoadAll());
  std::lock_guard<std::mutex> lock(mu_);
  for (JobRecord& record : records) {
    std::string id = record.status.id;
    Job& job = jobs_[id];
    job.record = std::move(record);
    switch (job.record.status.state) {
      case JobState::kValidating:
        to_validate_.push_back(id);
        break;
      case JobState::kRunning:
        RecoverRunning(job);
        break;
      case JobState::kQueued:
        if (Status fits = CheckResources(job.record.status.spec); !fits.ok()) {
          SetState(job, JobState::kFailed, std::string(fits.message()),
                   absl::StrCat("the server's configuration changed: ", fits.message()));
        }
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

void JobManager::RecoverRunning(Job& job) {
  const JobStatus& s = job.record.status;
  int pid = job.record.pid;
  if (pid > 0 && IsWorkerOf(pid, s.job_dir)) {
    job.foreign = true;
    SignalGroup(pid, SIGTERM);
    job.kill_at = std::chrono::steady_clock::now() + hooks_.stop_grace;
    NewEvent event{api::JobEvent::Type::kLog,
                   absl::StrCat("server restarted: stopping worker pid ", pid,
                                " left by the previous server process (SIGTERM); the job "
                                "resumes from its last checkpoint")};
    Persist(job, &event);
    return;
  }
  exits_.push_back(
      {s.id, pid, -1, absl::StrCat("worker pid ", pid, " was gone when the server restarted")});
}

void JobManager::Persist(Job& job, const NewEvent* event) {
  StatusOr<int64_t> seq = store_->Save(job.record, event);
  if (!seq.ok()) {
    VLMD_LOG(Error) << "job " << job.record.status.id << ": " << seq.status().message();
    return;
  }
  if (event != nullptr) NotifyWatchers();
}

void JobManager::SetState(Job& job, JobState state, const std::string& message,
                          const std::string& reason) {
  JobStatus& s = job.record.status;
  s.state = state;
  s.reason = reason;
  if (api::IsTerminal(state)) {
    s.finished_unix = std::time(nullptr);
    s.gpus.clear();
    job.record.pid = 0;
  }
  VLMD_LOG(Info) << "job " << s.id << " (" << s.name << "): " << api::JobStateName(state)
                 << (message.empty() ? "" : ": ") << message;
  NewEvent event{api::JobEvent::Type::kState,
                 absl::StrCat(api::JobStateName(state), message.empty() ? "" : ": ", message)};
  Persist(job, &event);
  control_cv_.notify_all();
}

void JobManager::SignalWorkerLocked(Job& job, int sig) {
  if (job.exited || job.record.pid <= 0) return;
  SignalGroup(job.record.pid, sig);
}

JobManager::Job* JobManager::FindLocked(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const JobManager::Job* JobManager::FindLocked(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

StatusOr<JobStatus> JobManager::GetJob(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Job* job = FindLocked(id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job with id \"", id, "\""));
  return job->record.status;
}

std::vector<JobStatus> JobManager::ListJobs(std::optional<JobState> state) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const JobRecord*> records;
  for (const auto& [id, job] : jobs_) {
    if (!state || job.record.status.state == *state) records.push_back(&job.record);
  }
  std::sort(records.begin(), records.end(),
            [](const JobRecord* a, const JobRecord* b) { return a->seq < b->seq; });
  std::vector<JobStatus> out;
  for (const JobRecord* r : records) out.push_back(r->status);
  return out;
}

StatusOr<JobStatus> JobManager::CancelJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = FindLocked(id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job with id \"", id, "\""));
  JobStatus& s = job->record.status;
  if (api::IsTerminal(s.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " already finished (", api::JobStateName(s.state), ")"));
  }
  if (s.state != JobState::kRunning) {
    SetState(*job, JobState::kCancelled, "cancelled before it started",
             absl::StrCat("cancelled by request while ",
                          s.state == JobState::kQueued ? "queued" : "validating"));
    return s;
  }
  if (!job->cancel_requested) {
    job->cancel_requested = true;
    if (!job->foreign) {
      SignalWorkerLocked(*job, SIGTERM);
      job->kill_at = std::chrono::steady_clock::now() + hooks_.stop_grace;
    }
    NewEvent event{api::JobEvent::Type::kLog,
                   absl::StrCat("cancel requested: SIGTERM sent to worker pid ", job->record.pid,
                                "; it stops after the current step (SIGKILL after ",
                                hooks_.stop_grace.count() / 1000, " s)")};
    Persist(*job, &event);
  }
  return s;
}

api::JobStats JobManager::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  api::JobStats stats;
  for (int i = 0; i <= static_cast<int>(JobState::kCancelled); ++i) {
    stats.jobs_by_state[api::JobStateName(static_cast<JobState>(i))] = 0;
  }
  for (const auto& [id, job] : jobs_) {
    const JobStatus& s = job.record.status;
    ++stats.jobs_by_state[api::JobStateName(s.state)];
    if (s.state == JobState::kQueued) ++stats.queue_length;
    if (s.state == JobState::kRunning) stats.running.push_back(s);
  }
  stats.training_gpus_total = static_cast<int64_t>(config_.training_gpus.size());
  std::set<int> pool(config_.training_gpus.begin(), config_.training_gpus.end());
  for (int g : BusyGpusLocked()) stats.training_gpus_busy += pool.count(g);
  return stats;
}

}  // namespace vlmd::jobs

namespace vlmd::jobs {

void JobManager::WaitForWorkersToStop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) {
    if (job.record.status.state != JobState::kRunning || job.record.pid <= 0) continue;
    if (!job.foreign) SignalWorkerLocked(job, SIGTERM);
    if (job.kill_at == std::chrono::steady_clock::time_point{}) {
      job.kill_at = std::chrono::steady_clock::now() + hooks_.stop_grace;
    }
  }
  // The control thread reaps them (and SIGKILLs after the grace); wait until none is left.
  while (true) {
    bool any = false;
    for (const auto& [id, job] : jobs_) {
      any = any || (job.record.status.state == JobState::kRunning && job.record.pid > 0);
    }
    if (!any) return;
    control_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

void JobManager::Shutdown(bool stop_workers) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || stopping_) return;
    stopping_ = true;
    stopping_workers_ = stop_workers;
  }
  stop_validation_ = true;
  validate_cv_.notify_all();
  if (stop_workers) WaitForWorkersToStop();
  std::vector<std::unique_ptr<WorkerMonitor>> monitors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    control_cv_.notify_all();
  }
  if (control_thread_.joinable()) control_thread_.join();
  if (validator_thread_.joinable()) validator_thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (job.monitor) monitors.push_back(std::move(job.monitor));
    }
  }
  monitors.clear();  // stop reading; workers left running are recovered by the next server
  StopWatches();
}

}  // namespace vlmd::jobs
