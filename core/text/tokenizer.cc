#include "core/text/tokenizer.h"

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/text/bpe_tokenizer.h"
#include "core/text/utf8.h"

namespace vlmd {

StatusOr<std::shared_ptr<const Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  return text::ParseTokenizerJson(contents, path);
}

StatusOr<std::shared_ptr<const Tokenizer>> Tokenizer::FromJson(std::string_view contents,
                                                               const std::string& source_name) {
  return text::ParseTokenizerJson(contents, source_name);
}

StatusOr<std::shared_ptr<const Tokenizer>> Tokenizer::Load(const std::string& path,
                                                           const std::string& fallback_path) {
  if (!IsDirectory(path)) return FromFile(path);
  std::string in_dir = JoinPath(path, "tokenizer.json");
  if (PathExists(in_dir)) return FromFile(in_dir);
  if (!fallback_path.empty()) return FromFile(fallback_path);
  return absl::NotFoundError(
      absl::StrCat("model directory ", path, " has no tokenizer.json and no fallback was given"));
}

IncrementalDecoder::IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer,
                                       bool skip_special_tokens)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

std::string IncrementalDecoder::Add(int32_t id) {
  pending_ += tokenizer_->DecodeBytes({id}, skip_special_);
  // Bytes before an incomplete trailing character decode the same whatever follows them.
  size_t keep = text::IncompleteUtf8Tail(pending_);
  std::string piece = text::Utf8Lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  text_ += piece;
  return piece;
}

std::string IncrementalDecoder::Flush() {
  std::string piece = text::Utf8Lossy(pending_);
  pending_.clear();
  text_ += piece;
  return piece;
}

}  // namespace vlmd
