// Validation of a fine-tuning data set before the job is queued: every row parsed, every
// image's header read (no full decode) and checked against the pixel limits, and every
// sample's exact length computed (text tokens of the rendered template plus each image's
// tokens from its header size), so that image tokens count toward max_length (unlike SWIFT,
// spec/swift.md §1). Over-long samples are reported and skipped, never replaced; malformed rows
// and unreadable images fail validation. No torch; thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/dataset.h"
#include "core/train/example.h"

namespace vlmd {

// What validation enforces.
struct ValidationOptions {
  int64_t max_length = 2048;  // tokens, image tokens included; <= 0 = no limit
  size_t max_issues = 100;    // issues kept in the report (all are counted)
  // When it turns true, validation stops with CANCELLED (server shutdown). May be null.
  const std::atomic<bool>* stop = nullptr;
};

// What became of one sample.
enum class SampleVerdict { kOk, kTooLong, kError };

// The outcome of validation, with per-sample lengths.
struct ValidationReport {
  int64_t files = 0;
  int64_t rows = 0;              // rows read, good and bad
  int64_t samples_ok = 0;        // ready to train on
  int64_t skipped_too_long = 0;  // longer than max_length: left out of training
  int64_t errors = 0;            // rows or samples with an error: validation fails
  int64_t max_length = 0;
  IssueList issues;  // read and check issues in order (the first max_issues kept)
  // Aligned with the validated samples: verdict, total tokens (text + image; -1 after an
  // error) and image tokens.
  std::vector<SampleVerdict> verdicts;
  std::vector<int64_t> tokens;
  std::vector<int64_t> image_tokens;

  // True when nothing failed and at least one sample can be trained on.
  bool ok() const { return errors == 0 && samples_ok > 0; }
  // The longest and the mean length of the samples that are ok (0 when none).
  int64_t MaxTokens() const;
  double MeanTokens() const;
  // One paragraph a user can act on: counts, the reasons, the first issues with file:line,
  // and what to change.
  std::string Summary() const;
};

// Checks samples already read. Errors only for CANCELLED (options.stop) or a missing tokenizer
// (FAILED_PRECONDITION); everything about the data is in the report.
StatusOr<ValidationReport> ValidateSamples(const std::vector<Sample>& samples,
                                           const ExampleOptions& example_options,
                                           const ValidationOptions& options);

// Samples with their report.
struct ValidatedDataset {
  std::vector<Sample> samples;  // every sample read (the report's vectors align with it)
  ValidationReport report;      // includes the rows that could not be read
};

// Reads `sources` and validates what was read. File-level errors (a missing or forbidden data
// file, an unknown file type) are returned as a status naming the file.
StatusOr<ValidatedDataset> ValidateDataset(const std::vector<DatasetSource>& sources,
                                           const DatasetReadOptions& read_options,
                                           const ExampleOptions& example_options,
                                           const ValidationOptions& options);

// The samples whose verdict is kOk, in order. `report` must come from validating `samples`.
std::vector<Sample> KeepTrainable(std::vector<Sample> samples, const ValidationReport& report);

}  // namespace vlmd
