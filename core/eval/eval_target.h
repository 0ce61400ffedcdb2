// What an EvalRequest evaluates: the served model, the adapter (a loaded one, or a job's
// checkpoint loaded for the evaluation under a unique name and unloaded afterwards) and, for a
// job, its spec as the worker read it (job.json). No torch.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/api/eval.h"
#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/train/job_spec.h"

namespace vlmd::eval {

// Unloads an adapter loaded for one evaluation when destroyed. Not copyable.
class TemporaryAdapter {
 public:
  TemporaryAdapter(api::InferenceService* inference, std::string name)
      : inference_(inference), name_(std::move(name)) {}
  ~TemporaryAdapter();
  TemporaryAdapter(const TemporaryAdapter&) = delete;
  TemporaryAdapter& operator=(const TemporaryAdapter&) = delete;

 private:
  api::InferenceService* inference_;
  std::string name_;
};

struct EvalTarget {
  api::ModelInfo model;                         // the served model
  std::optional<api::AdapterInfo> adapter;      // none = the base model
  std::optional<api::JobStatus> job;            // when request.job_id is set
  std::optional<JobSpec> job_spec;              // the job's job.json
  std::string checkpoint_dir;                   // the job checkpoint evaluated
  std::unique_ptr<TemporaryAdapter> temporary;  // unloads the checkpoint's adapter
};

// Resolves model, adapter and job of `request`. `temporary_name` names a checkpoint's adapter
// while it is loaded. INVALID_ARGUMENT for adapter + job_id together or a bad checkpoint
// value; NOT_FOUND for an unknown model, adapter, job or checkpoint; FAILED_PRECONDITION for a
// job without a job service, or whose base model is not served.
StatusOr<EvalTarget> ResolveTarget(const api::EvalRequest& request,
                                   api::InferenceService* inference, api::JobService* jobs,
                                   const std::string& temporary_name);

// The checkpoint directory of `job` for "best", "last" or a step number (as MergeLora).
StatusOr<std::string> JobCheckpointDir(const api::JobStatus& job, const std::string& which);

}  // namespace vlmd::eval
