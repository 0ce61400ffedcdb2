#include "core/train/dataset.h"

#include <algorithm>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/base/file_util.h"
#include "core/train/csv.h"
#include "core/train/dataset_row.h"

namespace vlmd {
namespace {

using json = nlohmann::json;
using train_internal::RowContext;
using train_internal::RowError;

// nlohmann's messages start with "[json.exception.parse_error.101] "; users need the rest.
std::string JsonMessage(const std::exception& e) {
  std::string message = e.what();
  const size_t close = message.find("] ");
  return message.rfind("[json.exception.", 0) == 0 && close != std::string::npos
             ? message.substr(close + 2)
             : message;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Shared state while reading one file.
struct FileReader {
  RowContext context;
  DatasetReadResult* result;

  void AddIssue(int64_t line, IssueKind kind, std::string reason) {
    result->issues.Add({context.file, line, kind, std::move(reason)});
  }
  void AddRow(const json& row, int64_t line) {
    ++result->rows;
    context.line = line;
    Sample sample;
    std::optional<RowError> error = train_internal::RowToSample(row, context, &sample);
    if (error) return AddIssue(line, error->kind, std::move(error->reason));
    result->samples.push_back(std::move(sample));
  }
};

void ReadJsonl(const std::string& text, FileReader* reader) {
  int64_t line = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    absl::string_view view(text.data() + start, end - start);
    start = end + 1;
    ++line;
    if (absl::StripAsciiWhitespace(view).empty()) continue;
    try {
      reader->AddRow(json::parse(view.begin(), view.end()), line);
    } catch (const json::exception& e) {
      ++reader->result->rows;
      // The row is one line, so nlohmann's "at line 1, column N" only needs its column.
      const std::string message =
          absl::StrReplaceAll(JsonMessage(e), {{"at line 1, column ", "at column "}});
      reader->AddIssue(line, IssueKind::kBadJson, absl::StrCat("bad JSON: ", message));
    }
  }
}

void ReadJsonArray(const std::string& text, FileReader* reader) {
  json rows;
  try {
    rows = json::parse(text);
  } catch (const json::parse_error& e) {
    const size_t byte = std::min<size_t>(e.byte, text.size());
    const int64_t line = 1 + std::count(text.begin(), text.begin() + byte, '\n');
    return reader->AddIssue(line, IssueKind::kBadJson, absl::StrCat("bad JSON: ", JsonMessage(e)));
  } catch (const json::exception& e) {  // out_of_range: a number like 3e308 overflows a double
    return reader->AddIssue(1, IssueKind::kBadJson, absl::StrCat("bad JSON: ", JsonMessage(e)));
  }
  if (!rows.is_array()) {
    return reader->AddIssue(
        1, IssueKind::kBadRow,
        absl::StrCat("a .json data file must hold a list of rows (got ", rows.type_name(), ")"));
  }
  for (size_t i = 0; i < rows.size(); ++i) reader->AddRow(rows[i], static_cast<int64_t>(i) + 1);
}

void ReadCsv(const std::string& text, FileReader* reader) {
  std::vector<CsvRecord> records = ParseCsv(text);
  if (records.empty()) return;
  const CsvRecord& header = records[0];
  if (!header.error.empty()) return reader->AddIssue(header.line, IssueKind::kBadCsv, header.error);
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (!record.error.empty() || record.fields.size() != header.fields.size()) {
      ++reader->result->rows;
      reader->AddIssue(record.line, IssueKind::kBadCsv,
                       !record.error.empty()
                           ? record.error
                           : absl::StrCat(record.fields.size(), " fields, but the header has ",
                                          header.fields.size()));
      continue;
    }
    json row = json::object();
    for (size_t i = 0; i < header.fields.size(); ++i) {
      if (!record.fields[i].empty()) row[header.fields[i]] = record.fields[i];
    }
    reader->AddRow(row, record.line);
  }
}

// The data file's canonical path (checked against the roots) and its text.
StatusOr<std::string> ReadDataText(const std::string& path, const DatasetReadOptions& options) {
  std::string resolved = path;
  if (options.allowed_roots) {
    StatusOr<std::string> r = ResolveUnderRoots(path, *options.allowed_roots);
    if (!r.ok()) {
      return Status(r.status().code(), absl::StrCat("data set ", path, ": ", r.status().message()));
    }
    resolved = *r;
  }
  return ReadFile(resolved);
}

// A uniform integer in [0, bound) by rejection, identical on every platform.
uint64_t UniformBelow(std::mt19937_64* rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do {
    x = (*rng)();
  } while (x >= limit);
  return x % bound;
}

}  // namespace

StatusOr<DatasetReadResult> ReadDatasetFile(const std::string& path,
                                            const DatasetReadOptions& options, bool latex_ocr) {
  const std::string lower = absl::AsciiStrToLower(path);
  enum class Format { kJsonl, kJson, kCsv } format;
  if (absl::EndsWith(lower, ".jsonl")) {
    format = Format::kJsonl;
  } else if (absl::EndsWith(lower, ".json")) {
    format = Format::kJson;
  } else if (absl::EndsWith(lower, ".csv")) {
    format = Format::kCsv;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("data set ", path, ": unknown file type (use .jsonl, .json or .csv)"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadDataText(path, options));
  DatasetReadResult result;
  result.issues = IssueList(options.max_issues);
  result.files = 1;
  FileReader reader{
      RowContext{path, 0, DirName(path), latex_ocr, &options.allowed_roots, format == Format::kCsv},
      &result};
  if (format == Format::kJsonl) ReadJsonl(text, &reader);
  if (format == Format::kJson) ReadJsonArray(text, &reader);
  if (format == Format::kCsv) ReadCsv(text, &reader);
  return result;
}

StatusOr<DatasetReadResult> ReadDatasets(const std::vector<DatasetSource>& sources,
                                         const DatasetReadOptions& options) {
  DatasetReadResult all;
  all.issues = IssueList(options.max_issues);
  for (const DatasetSource& source : sources) {
    for (const std::string& file : source.files) {
      ASSIGN_OR_RETURN(DatasetReadResult one, ReadDatasetFile(file, options, source.latex_ocr));
      all.samples.insert(all.samples.end(), std::make_move_iterator(one.samples.begin()),
                         std::make_move_iterator(one.samples.end()));
      all.issues.Merge(one.issues);
      all.rows += one.rows;
      all.files += one.files;
    }
  }
  return all;
}

StatusOr<DatasetSource> ResolveDatasetName(const std::string& name, const std::string& data_root) {
  const bool named = name == "latex-ocr-print" || name == "latex-ocr-handwrite";
  // A folder in the LaTeX-OCR layout (what the job service resolves a name to) reads the same.
  if (!named && !IsDirectory(name)) return DatasetSource{name, {name}, false};
  if (named && data_root.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("data set ", name, " needs a data root (none is configured)"));
  }
  const std::string folder = named ? JoinPath(data_root, name) : name;
  DatasetSource source{name, {}, true};
  for (const char* split : {"train.jsonl", "validation.jsonl", "test.jsonl"}) {
    const std::string file = JoinPath(folder, split);
    if (PathExists(file)) source.files.push_back(file);
  }
  if (source.files.empty() || source.files[0] != JoinPath(folder, "train.jsonl")) {
    return absl::NotFoundError(absl::StrCat("data set ", name, ": no train.jsonl in ", folder));
  }
  return source;
}

StatusOr<TrainValSplit> SplitTrainVal(std::vector<Sample> samples, double ratio, uint64_t seed) {
  if (!(ratio >= 0 && ratio < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("split ratio ", ratio, " is not in [0, 1)"));
  }
  TrainValSplit split;
  const size_t n = samples.size();
  if (ratio == 0) {
    split.train = std::move(samples);
    return split;
  }
  const size_t val = std::max<size_t>(static_cast<size_t>(static_cast<double>(n) * ratio), 1);
  if (val >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat(n, " samples are too few to hold out ", val,
                     " for validation and train on the rest; "
                     "add rows, or set split_ratio 0 and give a validation data set"));
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[UniformBelow(&rng, i + 1)]);
  for (size_t i = 0; i < n; ++i) {
    (i < val ? split.val : split.train).push_back(std::move(samples[order[i]]));
  }
  return split;
}

const char* IssueKindName(IssueKind kind) {
  switch (kind) {
    case IssueKind::kBadJson:
      return "bad_json";
    case IssueKind::kBadCsv:
      return "bad_csv";
    case IssueKind::kBadRow:
      return "bad_row";
    case IssueKind::kImageTags:
      return "image_tags";
    case IssueKind::kImageOutsideRoots:
      return "image_outside_roots";
    case IssueKind::kImageMissing:
      return "image_missing";
    case IssueKind::kImageUnsupported:
      return "image_unsupported";
    case IssueKind::kImageUnreadable:
      return "image_unreadable";
    case IssueKind::kImageCorrupt:
      return "image_corrupt";
    case IssueKind::kImageTooLarge:
      return "image_too_large";
    case IssueKind::kTooLong:
      return "too_long";
  }
  return "bad_row";
}

bool IsError(IssueKind kind) { return kind != IssueKind::kTooLong; }

std::string DatasetIssue::ToString() const { return absl::StrCat(file, ":", line, ": ", reason); }

void IssueList::Add(DatasetIssue issue) {
  ++total_;
  errors_ += IsError(issue.kind) ? 1 : 0;
  ++counts_[IssueKindName(issue.kind)];
  if (kept_.size() < max_kept_) kept_.push_back(std::move(issue));
}

void IssueList::Merge(const IssueList& other) {
  total_ += other.total_;
  errors_ += other.errors_;
  for (const auto& [name, count] : other.counts_) counts_[name] += count;
  for (const DatasetIssue& issue : other.kept_) {
    if (kept_.size() < max_kept_) kept_.push_back(issue);
  }
}

}  // namespace vlmd
