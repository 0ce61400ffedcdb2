#include "core/train/validate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace vlmd {
namespace {

// A problem found while checking one sample.
struct SampleProblem {
  IssueKind kind;
  std::string reason;
};

IssueKind KindForLoadError(const Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied:
      return IssueKind::kImageOutsideRoots;
    case absl::StatusCode::kNotFound:
      return IssueKind::kImageMissing;
    default:
      return IssueKind::kImageUnreadable;
  }
}

// Reads one image's header; adds its token count to *tokens.
std::optional<SampleProblem> CheckImage(const ImageSource& source, size_t index,
                                        const ExampleOptions& options, int64_t* tokens) {
  const std::string what = source.Describe(index);
  StatusOr<std::string> bytes = LoadImageBytes(source, index, options.images);
  if (!bytes.ok())
    return SampleProblem{KindForLoadError(bytes.status()), std::string(bytes.status().message())};
  StatusOr<ImageInfo> info = ProbeImage(*bytes, what);
  if (!info.ok())
    return SampleProblem{IssueKind::kImageCorrupt, std::string(info.status().message())};
  const int64_t pixels = static_cast<int64_t>(info->width) * info->height;
  const int64_t limit = options.images.decode.max_pixels;
  if (limit > 0 && pixels > limit) {
    return SampleProblem{IssueKind::kImageTooLarge,
                         absl::StrCat(what, " is ", info->width, "x", info->height, " (", pixels,
                                      " pixels), over the limit of ", limit)};
  }
  StatusOr<int64_t> count = ImageTokenCount(info->height, info->width, options.preprocess);
  if (!count.ok()) {
    return SampleProblem{IssueKind::kImageTooLarge,
                         absl::StrCat(what, ": ", count.status().message())};
  }
  *tokens += *count;
  return std::nullopt;
}

// Computes the sample's exact length; a problem when it cannot be trained on.
std::optional<SampleProblem> CheckSample(const Sample& sample, const ExampleOptions& options,
                                         int64_t max_length, int64_t* tokens,
                                         int64_t* image_tokens) {
  StatusOr<TemplateTokens> text = TokenizeTemplate(sample, options);
  if (!text.ok()) return SampleProblem{IssueKind::kBadRow, std::string(text.status().message())};
  for (size_t i = 0; i < sample.images.size(); ++i) {
    std::optional<SampleProblem> problem = CheckImage(sample.images[i], i, options, image_tokens);
    if (problem) return problem;
  }
  const int64_t text_tokens = static_cast<int64_t>(text->ids.size()) - text->num_images;
  *tokens = text_tokens + *image_tokens;
  if (max_length > 0 && *tokens > max_length) {
    return SampleProblem{IssueKind::kTooLong,
                         absl::StrCat(*tokens, " tokens (", text_tokens, " text + ", *image_tokens,
                                      " image) exceed max_length ", max_length)};
  }
  return std::nullopt;
}

// "1 row", "2 rows".
std::string Count(int64_t n, const char* noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

// "3 bad_json, 1 image_missing" for the error kinds (or the skipped kind) of a report.
std::string KindCounts(const IssueList& issues, bool errors) {
  std::vector<std::string> parts;
  for (const auto& [name, count] : issues.counts()) {
    if ((name != IssueKindName(IssueKind::kTooLong)) == errors) {
      parts.push_back(absl::StrCat(count, " ", name));
    }
  }
  return absl::StrJoin(parts, ", ");
}

// The first `n` kept issues that are (or are not) errors, as "file:line: reason; ...".
std::string FirstIssues(const IssueList& issues, bool errors, size_t n) {
  std::vector<std::string> parts;
  for (const DatasetIssue& issue : issues.kept()) {
    if (IsError(issue.kind) == errors && parts.size() < n) parts.push_back(issue.ToString());
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace

int64_t ValidationReport::MaxTokens() const {
  int64_t best = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (verdicts[i] == SampleVerdict::kOk) best = std::max(best, tokens[i]);
  }
  return best;
}

double ValidationReport::MeanTokens() const {
  double sum = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (verdicts[i] == SampleVerdict::kOk) sum += static_cast<double>(tokens[i]);
  }
  return samples_ok > 0 ? sum / static_cast<double>(samples_ok) : 0.0;
}

std::string ValidationReport::Summary() const {
  std::string out = absl::StrCat("Data check: ", Count(rows, "row"), " in ", Count(files, "file"),
                                 ". ", Count(samples_ok, "sample"),
                                 samples_ok == 1 ? " is" : " are", " ready to train on");
  if (samples_ok > 0) {
    absl::StrAppendFormat(&out, " (up to %d tokens, %.0f on average, image tokens included)",
                          MaxTokens(), MeanTokens());
  }
  absl::StrAppend(&out, ".");
  if (skipped_too_long > 0) {
    absl::StrAppend(&out, " ", Count(skipped_too_long, "sample"),
                    skipped_too_long == 1 ? " is" : " are", " longer than max_length ", max_length,
                    " and will be skipped (first: ", FirstIssues(issues, false, 1),
                    "); raise max_length or lower max_pixels to keep them.");
  }
  if (errors > 0) {
    absl::StrAppend(&out, " ", Count(errors, "row"), errors == 1 ? " has an error" : " have errors",
                    " that must be fixed before training (", KindCounts(issues, true),
                    "); first: ", FirstIssues(issues, true, 3), ".");
  } else if (samples_ok == 0) {
    absl::StrAppend(&out, " There is nothing to train on.");
  }
  return out;
}

StatusOr<ValidationReport> ValidateSamples(const std::vector<Sample>& samples,
                                           const ExampleOptions& example_options,
                                           const ValidationOptions& options) {
  if (example_options.tokenizer == nullptr) return absl::FailedPreconditionError("no tokenizer");
  ValidationReport report;
  report.issues = IssueList(options.max_issues);
  report.max_length = options.max_length;
  report.rows = static_cast<int64_t>(samples.size());
  report.verdicts.reserve(samples.size());
  for (const Sample& sample : samples) {
    if (options.stop != nullptr && options.stop->load()) {
      return absl::CancelledError("data validation stopped");
    }
    int64_t tokens = -1, image_tokens = 0;
    std::optional<SampleProblem> problem =
        CheckSample(sample, example_options, options.max_length, &tokens, &image_tokens);
    SampleVerdict verdict = !problem                               ? SampleVerdict::kOk
                            : problem->kind == IssueKind::kTooLong ? SampleVerdict::kTooLong
                                                                   : SampleVerdict::kError;
    if (problem) report.issues.Add({sample.file, sample.line, problem->kind, problem->reason});
    report.samples_ok += verdict == SampleVerdict::kOk;
    report.skipped_too_long += verdict == SampleVerdict::kTooLong;
    report.errors += verdict == SampleVerdict::kError;
    report.verdicts.push_back(verdict);
    report.tokens.push_back(verdict == SampleVerdict::kError ? -1 : tokens);
    report.image_tokens.push_back(image_tokens);
  }
  return report;
}

StatusOr<ValidatedDataset> ValidateDataset(const std::vector<DatasetSource>& sources,
                                           const DatasetReadOptions& read_options,
                                           const ExampleOptions& example_options,
                                           const ValidationOptions& options) {
  ASSIGN_OR_RETURN(DatasetReadResult read, ReadDatasets(sources, read_options));
  ASSIGN_OR_RETURN(ValidationReport checked,
                   ValidateSamples(read.samples, example_options, options));
  ValidatedDataset out;
  out.samples = std::move(read.samples);
  out.report = std::move(checked);
  out.report.files = read.files;
  out.report.rows = read.rows;
  out.report.errors += read.issues.errors();
  // Read issues come first in the report: they are rows the checks never saw.
  IssueList merged(options.max_issues);
  merged.Merge(read.issues);
  merged.Merge(out.report.issues);
  out.report.issues = std::move(merged);
  return out;
}

std::vector<Sample> KeepTrainable(std::vector<Sample> samples, const ValidationReport& report) {
  std::vector<Sample> kept;
  for (size_t i = 0; i < samples.size() && i < report.verdicts.size(); ++i) {
    if (report.verdicts[i] == SampleVerdict::kOk) kept.push_back(std::move(samples[i]));
  }
  return kept;
}

}  // namespace vlmd
