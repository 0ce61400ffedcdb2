// Fine-tuning data sets in SWIFT 2.x layouts (spec/swift.md §4): jsonl, json (an array of
// objects) and csv files whose rows are query/response/system/history, messages (role/content),
// conversations (ShareGPT from/value) or instruction/input/output, each with optional images.
// Reading turns every row into a Sample or a DatasetIssue naming file:line; nothing is dropped
// silently. No torch; thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/engine/prompt.h"
#include "core/text/chat_template.h"

namespace vlmd {

// What is wrong with a row. Every kind but kTooLong is an error that fails validation.
enum class IssueKind {
  kBadJson,            // a line or file that is not valid JSON
  kBadCsv,             // CSV quoting or column count
  kBadRow,             // missing or mistyped fields, roles out of order, no known layout
  kImageTags,          // more <image> tags than images, or a tag outside a user turn
  kImageOutsideRoots,  // an image path that resolves outside the allowed roots
  kImageMissing,       // an image file that does not exist
  kImageUnsupported,   // a URL or inline base64 image (only local files are read)
  kImageUnreadable,    // a directory, unreadable file, or over the byte limit
  kImageCorrupt,       // not a PNG/JPEG/BMP/GIF, or a corrupt header
  kImageTooLarge,      // over the pixel limit, or an aspect ratio smart_resize refuses
  kTooLong,            // more tokens than max_length: the sample is skipped
};
// The snake_case name used in reports ("bad_json", "image_missing", "too_long", ...).
const char* IssueKindName(IssueKind kind);
// False only for kTooLong.
bool IsError(IssueKind kind);

// One problem, located.
struct DatasetIssue {
  std::string file;
  int64_t line = 0;  // 1-based line (jsonl, csv) or array index + 1 (json)
  IssueKind kind = IssueKind::kBadRow;
  std::string reason;
  // "file:line: reason".
  std::string ToString() const;
};

// Issues in the order found: the first `max_kept` are kept, all are counted. Not thread-safe.
class IssueList {
 public:
  explicit IssueList(size_t max_kept = 100) : max_kept_(max_kept) {}
  // Counts `issue` and keeps it while fewer than max_kept are kept.
  void Add(DatasetIssue issue);
  // Adds another list's counts and as many of its kept issues as fit.
  void Merge(const IssueList& other);
  const std::vector<DatasetIssue>& kept() const { return kept_; }
  int64_t total() const { return total_; }
  int64_t errors() const { return errors_; }
  // Count per IssueKindName.
  const std::map<std::string, int64_t>& counts() const { return counts_; }

 private:
  size_t max_kept_;
  std::vector<DatasetIssue> kept_;
  int64_t total_ = 0, errors_ = 0;
  std::map<std::string, int64_t> counts_;
};

// One conversation to train on.
struct Sample {
  std::string file;
  int64_t line = 0;
  // Optional system turn, then user/assistant turns alternating, ending with the assistant.
  // kImage parts (in user turns only) mark where the images go, in order.
  std::vector<ChatMessage> messages;
  std::vector<ImageSource> images;  // canonical paths, one per kImage part
};

// Where a data set named in a job spec lives.
struct DatasetSource {
  std::string name;                // as the job spec gives it
  std::vector<std::string> files;  // data files, read in this order
  // Rows may also be LaTeX_OCR's {"image": path, "text": latex}: the query is SWIFT's fixed
  // "Using LaTeX to perform OCR on the image." and the response the text.
  bool latex_ocr = false;
};

// The query SWIFT's latex-ocr-print / latex-ocr-handwrite preprocessor uses.
inline constexpr char kLatexOcrQuery[] = "Using LaTeX to perform OCR on the image.";

// `latex-ocr-print` and `latex-ocr-handwrite` resolve to <data_root>/<name>/ holding
// train.jsonl and, when present, validation.jsonl and test.jsonl (SWIFT pools all splits and
// carves its own validation set). Any other name is a data file path, returned as is.
// NOT_FOUND naming the folder when a named set has no train.jsonl.
StatusOr<DatasetSource> ResolveDatasetName(const std::string& name, const std::string& data_root);

// How data files are read.
struct DatasetReadOptions {
  // Data files and images must resolve under these; nullopt = anywhere (offline tool, tests).
  std::optional<std::vector<std::string>> allowed_roots;
  size_t max_issues = 100;  // issues kept in the list (all are counted)
};

// Everything read from one or more files.
struct DatasetReadResult {
  std::vector<Sample> samples;  // the good rows, in file and row order
  IssueList issues;
  int64_t rows = 0;   // rows seen, good and bad
  int64_t files = 0;  // files read
};

// Reads one file; the format follows the extension (.jsonl, .json, .csv; any case). Image
// paths are relative to the file's directory unless absolute. Row problems become issues; the
// file itself failing is a status: NOT_FOUND (missing), PERMISSION_DENIED (outside the roots),
// INVALID_ARGUMENT (unknown extension), each naming the file.
StatusOr<DatasetReadResult> ReadDatasetFile(const std::string& path,
                                            const DatasetReadOptions& options,
                                            bool latex_ocr = false);
// Reads every file of every source, in order, into one result.
StatusOr<DatasetReadResult> ReadDatasets(const std::vector<DatasetSource>& sources,
                                         const DatasetReadOptions& options);

// A training set and a validation set.
struct TrainValSplit {
  std::vector<Sample> train;
  std::vector<Sample> val;
};

// SWIFT's split (spec/swift.md §1): with ratio > 0, val = max(int(n * ratio), 1) samples chosen
// by a shuffle seeded with `seed`; both halves keep the shuffled order. ratio 0 (a separate
// val_dataset) puts everything in train. Deterministic across platforms (mt19937_64 and our own
// Fisher-Yates), but NOT the same selection as SWIFT's numpy-based split for the same seed.
// INVALID_ARGUMENT for a ratio outside [0, 1) or when no training sample would remain.
StatusOr<TrainValSplit> SplitTrainVal(std::vector<Sample> samples, double ratio = 0.01,
                                      uint64_t seed = 42);

}  // namespace vlmd
