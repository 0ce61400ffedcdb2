// JobService::Create: the JobManager with the real parts of core plugged in.
#include "core/api/jobs.h"
#include "core/jobs/data_check.h"
#include "core/jobs/job_manager.h"
#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/train/merge.h"

namespace vlmd::api {

StatusOr<std::unique_ptr<JobService>> JobService::Create(const JobServiceConfig& config,
                                                         InferenceService* inference) {
  jobs::JobManagerHooks hooks;
  hooks.check_data = [config](const JobSpec& spec, const std::atomic<bool>& stop) {
    return jobs::CheckJobData(spec, config, stop);
  };
  hooks.merge = [](const MergeOptions& options) { return vlmd::MergeAdapter(options); };
  hooks.resolve_dataset = [root = config.data_root](const std::string& entry)
      -> StatusOr<std::string> {
    if (entry != "latex-ocr-print" && entry != "latex-ocr-handwrite") return entry;
    if (root.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data set ", entry, " needs training.data_root in the server config (none is set)"));
    }
    return JoinPath(root, entry);
  };
  ASSIGN_OR_RETURN(std::unique_ptr<jobs::JobManager> manager,
                   jobs::JobManager::Create(config, inference, std::move(hooks)));
  return std::unique_ptr<JobService>(std::move(manager));
}

}  // namespace vlmd::api
