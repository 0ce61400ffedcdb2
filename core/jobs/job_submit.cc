// JobManager: StartSftJob (spec checks, paths, job directory) and the background validator.
#include <sys/stat.h>

#include <ctime>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/jobs/job_manager.h"
#include "core/jobs/worker_process.h"

namespace vlmd::jobs {
namespace {

using api::JobState;
using api::JobStatus;

Status CheckName(const std::string& name) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  if (name.empty() || std::regex_match(name, kName)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("job spec: name \"", name,
                   "\" must be 1-128 letters, digits, '.', '_' or '-' (it becomes "
                   "the adapter's name)"));
}

// Resolves an existing path under the roots; errors name the spec field.
StatusOr<std::string> ResolveField(const std::string& field, const std::string& path,
                                   const std::vector<std::string>& roots) {
  StatusOr<std::string> resolved = ResolveUnderRoots(path, roots, /*must_exist=*/true);
  if (resolved.ok()) return resolved;
  return absl::Status(resolved.status().code(),
                      absl::StrCat("job spec: ", field, ": ", resolved.status().message()));
}

}  // namespace

Status JobManager::ResolveSpec(JobSpec* spec) const {
  const std::vector<std::string>& roots = config_.allowed_roots;
  ASSIGN_OR_RETURN(spec->model, ResolveField("model", spec->model, roots));
  if (!PathExists(JoinPath(spec->model, "config.json"))) {
    return absl::NotFoundError(absl::StrCat("job spec: model: ", spec->model,
                                            " has no config.json (not a checkpoint directory)"));
  }
  for (auto* list : {&spec->datasets, &spec->val_datasets}) {
    for (std::string& entry : *list) {
      std::string path = entry;
      if (hooks_.resolve_dataset) {
        ASSIGN_OR_RETURN(path, hooks_.resolve_dataset(entry));
      }
      bool named = path != entry;  // a data set name resolved under data_root (operator's)
      std::vector<std::string> allowed = roots;
      if (named && !config_.data_root.empty()) allowed.push_back(config_.data_root);
      ASSIGN_OR_RETURN(std::string resolved, ResolveField("dataset", path, allowed));
      if (IsDirectory(resolved) && !named) {
        return absl::InvalidArgumentError(
            absl::StrCat("job spec: dataset: ", resolved, " is a directory, not a data file"));
      }
      // A named set becomes its folder, which the worker and the evaluator read without
      // knowing the data root.
      entry = resolved;
    }
  }
  if (!spec->init_adapter.empty()) {
    ASSIGN_OR_RETURN(spec->init_adapter, ResolveField("init_adapter", spec->init_adapter, roots));
  }
  if (!spec->resume_from_checkpoint.empty()) {
    ASSIGN_OR_RETURN(spec->resume_from_checkpoint,
                     ResolveField("resume_from_checkpoint", spec->resume_from_checkpoint, roots));
  }
  return absl::OkStatus();
}

StatusOr<JobStatus> JobManager::StartSftJob(JobSpec spec) {
  RETURN_IF_ERROR(spec.Validate());
  RETURN_IF_ERROR(CheckName(spec.name));
  RETURN_IF_ERROR(ResolveSpec(&spec));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("job service is shutting down");
  for (const auto& [id, job] : jobs_) {
    const JobStatus& other = job.record.status;
    if (spec.name.empty() || other.name != spec.name) continue;
    if (other.state == JobState::kFailed || other.state == JobState::kCancelled) continue;
    return absl::AlreadyExistsError(absl::StrCat("a job named \"", spec.name, "\" exists (", id,
                                                 ", ", api::JobStateName(other.state),
                                                 "); choose another name"));
  }
  JobRecord record;
  record.status.name = spec.name;
  record.status.spec = std::move(spec);
  record.status.state = JobState::kValidating;
  record.status.created_unix = std::time(nullptr);
  ASSIGN_OR_RETURN(int64_t seq,
                   store_->Insert(&record, {api::JobEvent::Type::kState,
                                            "VALIDATING: checking data sets and images"}));
  (void)seq;
  Job& job = jobs_[record.status.id];
  job.record = std::move(record);
  JobStatus& s = job.record.status;
  if (s.name.empty()) s.name = s.spec.name = s.id;
  s.job_dir = JoinPath(JoinPath(config_.state_dir, "jobs"), s.id);
  s.spec.output_dir = s.job_dir;
  Status made = MakeDirs(s.job_dir, 0750);
  if (made.ok() && chmod(s.job_dir.c_str(), 0750) != 0) made = absl::InternalError("chmod");
  if (made.ok()) made = WriteFileAtomic(JoinPath(s.job_dir, "job.json"), s.spec.ToJson());
  if (!made.ok()) {
    SetState(job, JobState::kFailed, std::string(made.message()),
             absl::StrCat("cannot create the job directory: ", made.message()));
    return job.record.status;
  }
  Persist(job, nullptr);
  to_validate_.push_back(s.id);
  validate_cv_.notify_all();
  return job.record.status;
}

Status JobManager::CheckResources(const JobSpec& spec) const {
  const int pool = static_cast<int>(config_.training_gpus.size());
  if (spec.gpus > pool) {
    return absl::FailedPreconditionError(
        absl::StrCat("the job asks for ", spec.gpus, " GPUs but the training pool has ", pool,
                     pool > 0 ? absl::StrCat(" (GPUs ", GpuList(config_.training_gpus), ")") : "",
                     "; set gpus to at most ", pool, pool == 0 ? " (0 = CPU)" : "",
                     " or lend more GPUs to training"));
  }
  if (spec.gpus == 0 && config_.cpu_slots == 0) {
    return absl::FailedPreconditionError(
        "the job asks for the CPU (gpus 0) but this server runs no CPU jobs (cpu_slots 0); "
        "set gpus >= 1 or configure cpu_slots");
  }
  return absl::OkStatus();
}

void JobManager::ValidatorLoop() {
  while (true) {
    std::string id;
    JobSpec spec;
    {
      std::unique_lock<std::mutex> lock(mu_);
      validate_cv_.wait(lock, [&] { return stop_validation_ || !to_validate_.empty(); });
      if (stop_validation_) return;
      id = to_validate_.front();
      to_validate_.pop_front();
      const Job* job = FindLocked(id);
      if (job == nullptr || job->record.status.state != JobState::kValidating) continue;
      spec = job->record.status.spec;
    }
    StatusOr<DataCheckResult> result = DataCheckResult{};
    Status fits = CheckResources(spec);
    if (!fits.ok()) {
      result = fits;
    } else if (hooks_.check_data) {
      result = hooks_.check_data(spec, stop_validation_);
    }
    FinishValidation(id, result);
  }
}

void JobManager::FinishValidation(const std::string& id, const StatusOr<DataCheckResult>& result) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = FindLocked(id);
  if (job == nullptr || job->record.status.state != JobState::kValidating) return;
  if (stop_validation_ && !result.ok()) return;  // interrupted: validated again at restart
  JobStatus& s = job->record.status;
  if (!result.ok()) {
    SetState(*job, JobState::kFailed, std::string(result.status().message()),
             std::string(result.status().message()));
    return;
  }
  s.train_samples = result->train_samples;
  s.val_samples = result->val_samples;
  s.skipped_samples = result->skipped_samples;
  s.validation_report = result->report;
  SetState(*job, JobState::kQueued,
           absl::StrCat("data sets valid: ", s.train_samples, " training and ", s.val_samples,
                        " validation samples, ", s.skipped_samples, " skipped (too long)"),
           "");
}

}  // namespace vlmd::jobs
