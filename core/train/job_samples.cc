#include "core/train/job_samples.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/train/job_data.h"

namespace vlmd {

StatusOr<JobSamples> LoadJobSamples(const JobSpec& spec, const ExampleOptions& examples,
                                    const std::string& data_root,
                                    const std::function<void(const std::string&)>& log) {
  JobDataOptions options;
  options.data_root = data_root;
  options.allowed_roots = examples.images.allowed_roots;
  options.decode = examples.images.decode;
  ASSIGN_OR_RETURN(JobData data, LoadJobData(spec, examples, options));
  if (log) log(data.Summary());
  if (!data.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data set validation failed: ", data.Summary()));
  }
  return JobSamples{std::move(data.train), std::move(data.val)};
}

std::string DataRootFromEnvironment() {
  const char* root = std::getenv("VLMD_DATA_ROOT");
  return root != nullptr ? root : "";
}

}  // namespace vlmd
