#include "core/eval/eval_target.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/jobs/worker_report.h"

namespace vlmd::eval {
namespace {

// The served model a request names; for a job without a name, the one serving its base.
StatusOr<api::ModelInfo> FindModel(const std::string& name, const std::optional<JobSpec>& job,
                                   const std::vector<api::ModelInfo>& models) {
  if (models.empty()) return absl::FailedPreconditionError("no model is served");
  if (name.empty() && !job) return models.front();
  for (const api::ModelInfo& m : models) {
    if (!name.empty() && m.name == name) return m;
    if (name.empty() && CanonicalOrSelf(m.path) == CanonicalOrSelf(job->model)) return m;
  }
  if (!name.empty()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  return absl::FailedPreconditionError(absl::StrCat("the job's base model ", job->model,
                                                    " is not served; serve it or name a model"));
}

StatusOr<api::AdapterInfo> FindAdapter(const std::string& name, const std::string& model,
                                       const std::vector<api::AdapterInfo>& adapters) {
  for (const api::AdapterInfo& a : adapters) {
    if (a.name != name) continue;
    if (a.model != model) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter '", name, "' belongs to model '", a.model, "', not '", model, "'"));
    }
    return a;
  }
  return absl::NotFoundError(absl::StrCat("unknown adapter '", name, "'"));
}

// The job and its spec as the worker read it.
Status ResolveJob(const std::string& id, api::JobService* jobs, EvalTarget* target) {
  if (jobs == nullptr) {
    return absl::FailedPreconditionError("evaluating a job needs the job service");
  }
  ASSIGN_OR_RETURN(target->job, jobs->GetJob(id));
  const std::string path = JoinPath(target->job->job_dir, "job.json");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ASSIGN_OR_RETURN(target->job_spec, JobSpec::FromJson(text, path));
  return absl::OkStatus();
}

}  // namespace

TemporaryAdapter::~TemporaryAdapter() {
  Status s = inference_->UnloadAdapter(name_);
  if (!s.ok()) VLMD_LOG(Warning) << "evaluation adapter " << name_ << ": " << s.message();
}

StatusOr<std::string> JobCheckpointDir(const api::JobStatus& job, const std::string& which) {
  std::string dir;
  if (which.empty() || which == "best") {
    dir = job.best_checkpoint;
    if (dir.empty()) {
      dir = jobs::ReadTrainerState(jobs::LastCompleteCheckpoint(job.job_dir)).best_checkpoint;
    }
  } else if (which == "last") {
    dir = jobs::LastCompleteCheckpoint(job.job_dir);
  } else {
    char* end = nullptr;
    long long step = std::strtoll(which.c_str(), &end, 10);
    if (*end != '\0' || step < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint must be \"best\", \"last\" or a step number, not \"", which, "\""));
    }
    dir = JoinPath(job.job_dir, absl::StrCat("checkpoint-", step));
  }
  if (dir.empty() || !PathExists(JoinPath(dir, "adapter_config.json"))) {
    return absl::NotFoundError(absl::StrCat("job ", job.id, " has no ", which,
                                            " checkpoint with an adapter",
                                            dir.empty() ? "" : absl::StrCat(" (", dir, ")")));
  }
  return dir;
}

StatusOr<EvalTarget> ResolveTarget(const api::EvalRequest& request,
                                   api::InferenceService* inference, api::JobService* jobs,
                                   const std::string& temporary_name) {
  if (!request.adapter.empty() && !request.job_id.empty()) {
    return absl::InvalidArgumentError("set either adapter or job_id, not both");
  }
  EvalTarget target;
  if (!request.job_id.empty()) {
    RETURN_IF_ERROR(ResolveJob(request.job_id, jobs, &target));
    ASSIGN_OR_RETURN(target.checkpoint_dir, JobCheckpointDir(*target.job, request.checkpoint));
  }
  ASSIGN_OR_RETURN(target.model,
                   FindModel(request.model, target.job_spec, inference->ListModels()));
  if (!request.adapter.empty()) {
    ASSIGN_OR_RETURN(target.adapter,
                     FindAdapter(request.adapter, target.model.name, inference->ListAdapters()));
  } else if (target.job) {
    ASSIGN_OR_RETURN(target.adapter, inference->LoadAdapter(temporary_name, target.checkpoint_dir,
                                                            target.model.name));
    target.temporary = std::make_unique<TemporaryAdapter>(inference, temporary_name);
  }
  return target;
}

}  // namespace vlmd::eval
