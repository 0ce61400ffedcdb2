// A job's data, end to end: resolve the data set names of a JobSpec, read and validate every
// row and image header, leave out the over-long samples, and split off the validation set the
// way SWIFT does. Used by the job service's VALIDATING step and by the training worker, so
// both see the same samples. No torch; thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/text/tokenizer.h"
#include "core/train/dataset.h"
#include "core/train/job_spec.h"
#include "core/train/validate.h"

namespace vlmd {

// Where data may come from.
struct JobDataOptions {
  std::string data_root;  // holds latex-ocr-print/ etc.; "" = named data sets unavailable
  // Data files and images must resolve under these; nullopt = anywhere (offline tool, tests).
  std::optional<std::vector<std::string>> allowed_roots;
  DecodeLimits decode;  // header limits for images
  size_t max_issues = 100;
  const std::atomic<bool>* stop = nullptr;  // turns true at shutdown: CANCELLED
};

// The validated data of a job.
struct JobData {
  ExampleOptions example_options;  // tokenizer, image token id and the job's pixel limits
  ValidationReport train_report;   // spec.datasets
  std::optional<ValidationReport> val_report;  // spec.val_datasets, when given
  // Trainable samples after the split (spec.split_ratio, spec.seed), or the val data sets.
  // Both empty unless ok().
  std::vector<Sample> train, val;

  // True when every report is ok (no errors, something to train on).
  bool ok() const;
  // The reports as one text: "Training data: <paragraph>" [+ " Validation data: ..."].
  std::string Summary() const;
};

// Reads and validates the job's data. Data problems are in the reports (ok() false); the status
// is an error only for file-level problems (a missing, forbidden or unknown data file, an
// unknown data set name), CANCELLED, too few samples to split (INVALID_ARGUMENT), or pixel
// limits that make no sense.
StatusOr<JobData> LoadJobData(const JobSpec& spec, const ModelConfig& model,
                              const PreprocessorConfig& preprocessor,
                              std::shared_ptr<const Tokenizer> tokenizer,
                              const JobDataOptions& options);
// The same with the example options (tokenizer, pixel limits) already made.
StatusOr<JobData> LoadJobData(const JobSpec& spec, ExampleOptions examples,
                              const JobDataOptions& options);

}  // namespace vlmd
