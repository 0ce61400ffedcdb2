#include "core/eval/eval_data.h"

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/train/job_samples.h"

namespace vlmd::eval {
namespace {

// "file:line: reason; ..." for the first few issues.
std::string FirstIssues(const IssueList& issues, size_t most = 5) {
  std::string out;
  for (size_t i = 0; i < issues.kept().size() && i < most; ++i) {
    absl::StrAppend(&out, i ? "; " : "", issues.kept()[i].ToString());
  }
  return out;
}

}  // namespace

StatusOr<std::vector<Sample>> ReadEvalDatasets(const std::vector<std::string>& names,
                                               const std::vector<std::string>& roots,
                                               const std::string& data_root) {
  std::vector<DatasetSource> sources;
  DatasetReadOptions options;
  options.allowed_roots = roots;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(DatasetSource source, ResolveDatasetName(name, data_root));
    if (source.latex_ocr) options.allowed_roots->push_back(data_root);
    sources.push_back(std::move(source));
  }
  ASSIGN_OR_RETURN(DatasetReadResult read, ReadDatasets(sources, options));
  if (read.issues.errors() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        read.issues.errors(), " of ", read.rows, " rows are unusable: ", FirstIssues(read.issues)));
  }
  if (read.samples.empty()) return absl::InvalidArgumentError("the data sets hold no sample");
  return std::move(read.samples);
}

StatusOr<std::vector<Sample>> JobValidationSamples(const JobSpec& spec,
                                                   const ExampleOptions& examples,
                                                   const std::string& data_root) {
  ASSIGN_OR_RETURN(JobSamples data, LoadJobSamples(spec, examples, data_root, {}));
  if (data.val.empty()) {
    return absl::FailedPreconditionError(
        "the job has no validation split (dataset_test_ratio 0 and no val_dataset); name data "
        "sets to evaluate on");
  }
  return std::move(data.val);
}

void Truncate(int64_t max_samples, std::vector<Sample>* samples) {
  if (max_samples > 0 && static_cast<size_t>(max_samples) < samples->size()) {
    samples->resize(static_cast<size_t>(max_samples));
  }
}

StatusOr<std::string> MakeOutputDir(const std::string& requested,
                                    const std::vector<std::string>& roots,
                                    const std::string& job_dir, const std::string& state_dir,
                                    const std::string& id) {
  std::string dir;
  if (!requested.empty()) {
    ASSIGN_OR_RETURN(dir, ResolveUnderRoots(requested, roots, /*must_exist=*/false));
  } else if (!job_dir.empty()) {
    dir = JoinPath(JoinPath(job_dir, "evals"), id);
  } else if (!state_dir.empty()) {
    dir = JoinPath(JoinPath(state_dir, "evals"), id);
  } else {
    return absl::InvalidArgumentError("output_dir is required (the service has no state dir)");
  }
  RETURN_IF_ERROR(MakeDirs(dir, 0750));
  return dir;
}

}  // namespace vlmd::eval
