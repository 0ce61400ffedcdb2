#include "core/train/job_samples.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/train/validate.h"

namespace vlmd {
namespace {

// Reads and validates data sets; the report goes to `log`.
StatusOr<std::vector<Sample>> LoadSamples(const std::vector<std::string>& names,
                                          const ExampleOptions& examples, const JobSpec& spec,
                                          const std::string& data_root,
                                          const std::function<void(const std::string&)>& log) {
  std::vector<DatasetSource> sources;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(DatasetSource s, ResolveDatasetName(name, data_root));
    sources.push_back(std::move(s));
  }
  ValidationOptions options;
  options.max_length = spec.max_length;
  ASSIGN_OR_RETURN(ValidatedDataset v,
                   ValidateDataset(sources, DatasetReadOptions(), examples, options));
  if (log) log(v.report.Summary());
  if (!v.report.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data set validation failed: ", v.report.Summary()));
  }
  return KeepTrainable(std::move(v.samples), v.report);
}

}  // namespace

StatusOr<JobSamples> LoadJobSamples(const JobSpec& spec, const ExampleOptions& examples,
                                    const std::string& data_root,
                                    const std::function<void(const std::string&)>& log) {
  JobSamples out;
  ASSIGN_OR_RETURN(out.train, LoadSamples(spec.datasets, examples, spec, data_root, log));
  if (!spec.val_datasets.empty()) {
    ASSIGN_OR_RETURN(out.val, LoadSamples(spec.val_datasets, examples, spec, data_root, log));
  } else if (spec.split_ratio > 0) {
    ASSIGN_OR_RETURN(TrainValSplit split, SplitTrainVal(std::move(out.train), spec.split_ratio,
                                                        static_cast<uint64_t>(spec.seed)));
    out.train = std::move(split.train);
    out.val = std::move(split.val);
  }
  return out;
}

std::string DataRootFromEnvironment() {
  const char* root = std::getenv("VLMD_DATA_ROOT");
  return root != nullptr ? root : "";
}

}  // namespace vlmd
