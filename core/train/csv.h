// RFC 4180 CSV reading for data sets: comma-separated fields, records ended by LF or CRLF,
// double-quoted fields that may hold commas, line breaks and "" (one quote). Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vlmd {

// One record (the header is the first).
struct CsvRecord {
  int64_t line = 0;  // 1-based physical line the record starts on
  std::vector<std::string> fields;
  std::string error;  // non-empty when the record is malformed; `fields` is then incomplete
};

// Splits `text` into records. A leading UTF-8 byte-order mark is skipped, and so are empty
// lines. A quote inside an unquoted field is kept as text (as pandas does); text after a
// closing quote, or a quote left open at the end of the file, marks that record's error.
std::vector<CsvRecord> ParseCsv(std::string_view text);

}  // namespace vlmd
