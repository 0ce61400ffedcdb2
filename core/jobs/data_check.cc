#include "core/jobs/data_check.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/io/model_config.h"
#include "core/text/tokenizer.h"
#include "core/train/dataset.h"
#include "core/train/example.h"
#include "core/train/validate.h"

namespace vlmd::jobs {
namespace {

// Data files and images must lie under the allowed roots; the operator's data root (where the
// named sets live) is allowed too.
std::vector<std::string> DataRoots(const api::JobServiceConfig& config) {
  std::vector<std::string> roots = config.allowed_roots;
  if (!config.data_root.empty()) roots.push_back(config.data_root);
  return roots;
}

// Why validation failed: the first bad row (file:line: reason) up front, then the summary.
std::string FailureReason(const ValidationReport& report) {
  for (const DatasetIssue& issue : report.issues.kept()) {
    if (IsError(issue.kind)) return absl::StrCat(issue.ToString(), "\n", report.Summary());
  }
  return report.Summary();
}

// Reads and validates one list of data sets (spec.datasets or spec.val_datasets).
StatusOr<ValidationReport> CheckList(const std::vector<std::string>& entries,
                                     const api::JobServiceConfig& config,
                                     const ExampleOptions& examples,
                                     const ValidationOptions& options) {
  std::vector<DatasetSource> sources;
  for (const std::string& entry : entries) {
    ASSIGN_OR_RETURN(DatasetSource source, ResolveDatasetName(entry, config.data_root));
    sources.push_back(std::move(source));
  }
  DatasetReadOptions read;
  read.allowed_roots = DataRoots(config);
  ASSIGN_OR_RETURN(ValidatedDataset validated, ValidateDataset(sources, read, examples, options));
  if (!validated.report.ok()) return absl::InvalidArgumentError(FailureReason(validated.report));
  return std::move(validated.report);
}

// The validation split SWIFT carves out of the training set (SplitTrainVal's rule).
int64_t SplitSize(int64_t samples, double ratio) {
  if (ratio <= 0) return 0;
  return std::max<int64_t>(static_cast<int64_t>(static_cast<double>(samples) * ratio), 1);
}

}  // namespace

StatusOr<DataCheckResult> CheckJobData(const JobSpec& spec, const api::JobServiceConfig& config,
                                       const std::atomic<bool>& stop) {
  ASSIGN_OR_RETURN(ModelConfig model, ModelConfig::Load(spec.model));
  ASSIGN_OR_RETURN(PreprocessorConfig preprocessor, PreprocessorConfig::LoadOrDefault(spec.model));
  ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer,
                   Tokenizer::Load(spec.model, config.tokenizer_fallback));
  if (stop) return absl::CancelledError("shutting down");
  ASSIGN_OR_RETURN(ExampleOptions examples, MakeExampleOptions(model, preprocessor, tokenizer,
                                                               spec.min_pixels, spec.max_pixels));
  examples.images.allowed_roots = DataRoots(config);
  ValidationOptions options;
  options.max_length = spec.max_length;
  options.stop = &stop;
  ASSIGN_OR_RETURN(ValidationReport train, CheckList(spec.datasets, config, examples, options));
  DataCheckResult result;
  result.skipped_samples = train.skipped_too_long;
  result.report = train.Summary();
  if (!spec.val_datasets.empty()) {
    ASSIGN_OR_RETURN(ValidationReport val, CheckList(spec.val_datasets, config, examples, options));
    result.val_samples = val.samples_ok;
    result.train_samples = train.samples_ok;
    result.skipped_samples += val.skipped_too_long;
    absl::StrAppend(&result.report, "\nValidation set: ", val.Summary());
  } else {
    result.val_samples = SplitSize(train.samples_ok, spec.split_ratio);
    result.train_samples = train.samples_ok - result.val_samples;
  }
  if (result.train_samples <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no training sample is left after the validation split (", train.samples_ok,
        " samples, dataset_test_ratio ", spec.split_ratio, "); add data or lower the ratio"));
  }
  return result;
}

}  // namespace vlmd::jobs
