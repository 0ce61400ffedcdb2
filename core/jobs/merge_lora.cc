// JobManager: the serving side of jobs — registering a succeeded job's adapter with the
// inference service, and MergeLora.
#include <dirent.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/api/inference.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/jobs/job_manager.h"

namespace vlmd::jobs {
namespace {

// The served model whose checkpoint directory is `model_dir`, if any.
const api::ModelInfo* FindServed(const std::vector<api::ModelInfo>& models,
                                 const std::string& model_dir) {
  const std::string want = CanonicalOrSelf(model_dir);
  for (const api::ModelInfo& m : models) {
    if (CanonicalOrSelf(m.path) == want) return &m;
  }
  return nullptr;
}

bool IsEmptyDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return false;
  int entries = 0;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") ++entries;
  }
  closedir(dir);
  return entries == 0;
}

}  // namespace

std::string JobManager::RegisterAdapter(const api::JobStatus& status) {
  if (inference_ == nullptr) return "";
  if (status.best_checkpoint.empty()) return "adapter not registered: the job wrote no checkpoint";
  const api::ModelInfo* base = nullptr;
  std::vector<api::ModelInfo> models = inference_->ListModels();
  base = FindServed(models, status.spec.model);
  if (base == nullptr) {
    return absl::StrCat("adapter not registered: the base model ", status.spec.model,
                        " is not served under any name (serve it, then load ",
                        status.best_checkpoint, " as adapter \"", status.name, "\")");
  }
  StatusOr<api::AdapterInfo> loaded =
      inference_->LoadAdapter(status.name, status.best_checkpoint, base->name);
  if (!loaded.ok()) {
    return absl::StrCat("adapter not registered: ", loaded.status().message());
  }
  VLMD_LOG(Info) << "job " << status.id << ": adapter \"" << status.name
                 << "\" is served with model \"" << base->name << "\"";
  return "";
}

void JobManager::RegisterSucceededAdapters() {
  if (inference_ == nullptr) return;
  for (const api::JobStatus& s : ListJobs(api::JobState::kSucceeded)) {
    std::string not_registered = RegisterAdapter(s);
    if (!not_registered.empty()) VLMD_LOG(Warning) << "job " << s.id << ": " << not_registered;
  }
}

StatusOr<std::string> JobManager::CheckpointOfJob(const std::string& job_id,
                                                  const std::string& which,
                                                  std::string* model) const {
  ASSIGN_OR_RETURN(api::JobStatus job, GetJob(job_id));
  if (model->empty()) *model = job.spec.model;
  std::string dir;
  if (which.empty() || which == "best") {
    dir = job.best_checkpoint;
    if (dir.empty()) dir = ReadTrainerState(LastCompleteCheckpoint(job.job_dir)).best_checkpoint;
  } else if (which == "last") {
    dir = LastCompleteCheckpoint(job.job_dir);
  } else {
    char* end = nullptr;
    long long step = std::strtoll(which.c_str(), &end, 10);
    if (which.empty() || *end != '\0' || step < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint must be \"best\", \"last\" or a step number, not \"", which, "\""));
    }
    dir = JoinPath(job.job_dir, absl::StrCat("checkpoint-", step));
  }
  if (dir.empty() || !PathExists(JoinPath(dir, "adapter_config.json"))) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no ", which,
                                            " checkpoint with an adapter",
                                            dir.empty() ? "" : absl::StrCat(" (", dir, ")")));
  }
  return dir;
}

StatusOr<MergeOptions> JobManager::ResolveMerge(const api::MergeRequest& request) const {
  const std::vector<std::string>& roots = config_.allowed_roots;
  MergeOptions options;
  std::string model = request.model;
  if (!request.job_id.empty()) {
    ASSIGN_OR_RETURN(options.adapter_dir,
                     CheckpointOfJob(request.job_id, request.checkpoint, &model));
  } else if (request.adapter_dir.empty()) {
    return absl::InvalidArgumentError("merge: set adapter_dir or job_id");
  } else {
    ASSIGN_OR_RETURN(options.adapter_dir, ResolveUnderRoots(request.adapter_dir, roots));
    if (!PathExists(JoinPath(options.adapter_dir, "adapter_config.json"))) {
      return absl::NotFoundError(
          absl::StrCat("merge: ", options.adapter_dir, " has no adapter_config.json"));
    }
  }
  if (model.empty()) return absl::InvalidArgumentError("merge: model (base directory) is required");
  ASSIGN_OR_RETURN(options.base_dir, ResolveUnderRoots(model, roots));
  if (request.output_dir.empty())
    return absl::InvalidArgumentError("merge: output_dir is required");
  ASSIGN_OR_RETURN(options.output_dir,
                   ResolveUnderRoots(request.output_dir, roots, /*must_exist=*/false));
  if (PathExists(options.output_dir) && !IsEmptyDir(options.output_dir)) {
    return absl::AlreadyExistsError(
        absl::StrCat("merge: output_dir ", options.output_dir, " exists and is not empty"));
  }
  const std::string& d = request.dtype;
  if (d != "auto" && d != "float32" && d != "bfloat16" && d != "float16") {
    return absl::InvalidArgumentError("merge: dtype must be auto, float32, bfloat16 or float16");
  }
  options.dtype = d;
  return options;
}

StatusOr<api::MergeResult> JobManager::MergeLora(const api::MergeRequest& request) {
  ASSIGN_OR_RETURN(MergeOptions options, ResolveMerge(request));
  if (!request.register_as.empty() && inference_ == nullptr) {
    return absl::FailedPreconditionError("merge: register_as needs a server that serves models");
  }
  if (!hooks_.merge) return absl::UnimplementedError("merge is not available in this build");
  ASSIGN_OR_RETURN(MergeStats stats, hooks_.merge(options));
  api::MergeResult result{options.output_dir, stats.tensors, stats.merged_modules, stats.bytes,
                          stats.seconds};
  if (request.register_as.empty()) return result;
  std::vector<api::ModelInfo> models = inference_->ListModels();
  const api::ModelInfo* base = FindServed(models, options.base_dir);
  api::ModelSpec spec{request.register_as, options.output_dir,
                      base ? base->device : (models.empty() ? "cpu" : models.front().device),
                      "auto"};
  StatusOr<api::ModelInfo> added = inference_->AddModel(spec);
  if (!added.ok()) {
    return absl::Status(added.status().code(),
                        absl::StrCat("merged into ", options.output_dir, ", but serving it as \"",
                                     request.register_as, "\" failed: ", added.status().message()));
  }
  return result;
}

}  // namespace vlmd::jobs
