// Fine-tuning data set parsing on arbitrary files: the first byte picks the format (jsonl, json,
// csv, and LaTeX_OCR rows), the rest is the file. Reading runs with allowed roots set, so image
// paths resolve (or are refused) for real. Properties: reading never fails for a readable
// file; every row is either a sample or an issue that names the file and a line inside it;
// every sample's image parts match its images.
#include <algorithm>
#include <cstdint>

#include "core/train/dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  if (size < 1) return 0;
  static const char* kExt[] = {"jsonl", "json", "csv", "jsonl"};
  const int kind = data[0] & 3;
  std::string_view body = fuzz::AsView(data + 1, size - 1);
  std::string path = fuzz::WriteScratch(std::string("data.") + kExt[kind], body);
  DatasetReadOptions options;
  options.allowed_roots = std::vector<std::string>{fuzz::ScratchDir()};
  options.max_issues = 8;
  StatusOr<DatasetReadResult> result = ReadDatasetFile(path, options, /*latex_ocr=*/kind == 3);
  FUZZ_CHECK(result.ok());
  // The CSV reader also ends records at a lone CR.
  const int64_t lines =
      1 + std::count(body.begin(), body.end(), '\n') + std::count(body.begin(), body.end(), '\r');
  FUZZ_CHECK(result->files == 1);
  // A row is a sample or has an issue; file-level problems (bad JSON array, CSV header) are
  // issues without a row.
  FUZZ_CHECK(int64_t(result->samples.size()) <= result->rows);
  FUZZ_CHECK(result->rows == int64_t(result->samples.size()) ||
             result->issues.errors() + result->issues.total() > 0);
  for (const DatasetIssue& issue : result->issues.kept()) {
    FUZZ_CHECK(issue.file == path);
    FUZZ_CHECK(issue.line >= 0 && issue.line <= std::max<int64_t>(lines, result->rows) + 1);
    FUZZ_CHECK(!issue.reason.empty());
  }
  for (const Sample& s : result->samples) {
    FUZZ_CHECK(!s.messages.empty());
    size_t image_parts = 0;
    for (const ChatMessage& m : s.messages) {
      for (const ContentPart& p : m.content) image_parts += p.type == ContentPart::Type::kImage;
    }
    FUZZ_CHECK(image_parts == s.images.size());
    FUZZ_CHECK(s.messages.back().role == "assistant");
  }
  return 0;
}
