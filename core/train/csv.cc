#include "core/train/csv.h"

#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// Reads CSV text one record at a time.
class CsvParser {
 public:
  explicit CsvParser(std::string_view text) : text_(text) {
    if (text_.substr(0, kBom.size()) == kBom) pos_ = kBom.size();
  }

  // Fills `record` with the next non-empty record; false at the end of the text.
  bool Next(CsvRecord* record) {
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) SkipNewline();
    if (pos_ >= text_.size()) return false;
    *record = CsvRecord();
    record->line = line_;
    while (true) {
      std::string field;
      const bool more = ReadField(&field, record);
      record->fields.push_back(std::move(field));
      if (!more || !record->error.empty()) break;
    }
    if (!record->error.empty()) SkipRestOfLine();
    return true;
  }

 private:
  // Consumes "\n", "\r\n" or a lone "\r".
  void SkipNewline() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  void SkipRestOfLine() {
    while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
    if (pos_ < text_.size()) SkipNewline();
  }

  // Reads one field; true when a comma follows (another field of the same record).
  bool ReadField(std::string* field, CsvRecord* record) {
    if (pos_ < text_.size() && text_[pos_] == '"') return ReadQuoted(field, record);
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ',') return ++pos_, true;
      if (c == '\n' || c == '\r') return SkipNewline(), false;
      field->push_back(c);
      ++pos_;
    }
    return false;
  }

  bool ReadQuoted(std::string* field, CsvRecord* record) {
    const int64_t start_line = line_;
    ++pos_;  // opening quote
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
        field->push_back('"');
        pos_ += 2;
      } else if (c == '"') {
        ++pos_;
        return AfterClosingQuote(record);
      } else {
        if (c == '\n') ++line_;
        field->push_back(c);
        ++pos_;
      }
    }
    record->error = absl::StrCat("quoted field opened on line ", start_line, " is never closed");
    return false;
  }

  bool AfterClosingQuote(CsvRecord* record) {
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_];
    if (c == ',') return ++pos_, true;
    if (c == '\n' || c == '\r') return SkipNewline(), false;
    record->error = absl::StrCat("unexpected '", std::string(1, c),
                                 "' after a closing quote (a quote inside a quoted field is "
                                 "written as \"\")");
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

}  // namespace

std::vector<CsvRecord> ParseCsv(std::string_view text) {
  std::vector<CsvRecord> records;
  CsvParser parser(text);
  CsvRecord record;
  while (parser.Next(&record)) records.push_back(std::move(record));
  return records;
}

}  // namespace vlmd
