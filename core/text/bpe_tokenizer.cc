#include "core/text/bpe_tokenizer.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "core/text/byte_level.h"

namespace vlmd::text {
namespace {

// HF's Split with behavior Isolated: every match and every gap between matches is a piece.
std::vector<std::string_view> SplitIsolated(const OnigRegex& regex,
                                            const std::vector<std::string_view>& pieces) {
  std::vector<std::string_view> out;
  for (std::string_view piece : pieces) {
    size_t done = 0;
    for (const auto& [begin, end] : regex.FindAll(piece)) {
      if (done < begin) out.push_back(piece.substr(done, begin - done));
      out.push_back(piece.substr(begin, end - begin));
      done = end;
    }
    if (done < piece.size()) out.push_back(piece.substr(done));
  }
  return out;
}

}  // namespace

BpeTokenizer::BpeTokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
  for (const AddedToken& token : spec_.added_tokens) {
    added_ids_[token.content] = token.id;
    added_by_id_[token.id] = &token;
    if (token.normalized) {
      normalized_matcher_.Add(NormalizeText(token.content), &token);
    } else {
      raw_matcher_.Add(token.content, &token);
    }
  }
  BuildDecodeTables();
}

void BpeTokenizer::BuildDecodeTables() {
  size_ = spec_.model->Size();
  absl::flat_hash_set<std::string> special_contents;
  for (const AddedToken& token : spec_.added_tokens) {
    size_ = std::max(size_, token.id + 1);
    if (token.special) special_contents.insert(token.content);
  }
  id_bytes_.assign(size_, std::string());
  special_.assign(size_, false);
  const ByteLevelMap& byte_level = ByteLevelMap::Get();
  for (int32_t id = 0; id < size_; ++id) {
    std::optional<std::string> token = IdToToken(id);
    if (!token) continue;  // decoding drops unknown ids
    auto added = added_by_id_.find(id);
    // HF decodes a "normalized" added token as its normalized form.
    if (added != added_by_id_.end() && added->second->normalized) *token = NormalizeText(*token);
    std::optional<std::string> bytes = byte_level.Decode(*token);
    id_bytes_[id] = bytes ? *std::move(bytes) : *token;
    special_[id] = special_contents.contains(*token);
  }
}

std::string BpeTokenizer::NormalizeText(std::string_view text) const {
  std::string out(text);
  for (NormalForm form : spec_.normalizers) out = Normalize(out, form);
  return out;
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text) const {
  std::string repaired;
  if (!IsValidUtf8(text)) {
    repaired = Utf8Lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (const TextPiece& piece : raw_matcher_.Split(text)) {
    if (piece.token != nullptr) {
      ids.push_back(piece.token->id);
    } else {
      EncodeRawRun(text.substr(piece.begin, piece.end - piece.begin), &ids);
    }
  }
  return ids;
}

void BpeTokenizer::EncodeRawRun(std::string_view text, std::vector<int32_t>* ids) const {
  std::string normalized = NormalizeText(text);
  if (normalized_matcher_.empty()) {
    EncodeNormalizedRun(normalized, ids);
    return;
  }
  std::string_view view = normalized;
  for (const TextPiece& piece : normalized_matcher_.Split(view)) {
    if (piece.token != nullptr) {
      ids->push_back(piece.token->id);
    } else {
      EncodeNormalizedRun(view.substr(piece.begin, piece.end - piece.begin), ids);
    }
  }
}

void BpeTokenizer::EncodeNormalizedRun(std::string_view text, std::vector<int32_t>* ids) const {
  std::vector<std::string_view> pieces{text};
  for (const auto& split : spec_.pre_tokenizer.splits) pieces = SplitIsolated(*split, pieces);
  for (std::string_view piece : pieces) EncodeByteLevel(piece, ids);
}

void BpeTokenizer::EncodeByteLevel(std::string_view piece, std::vector<int32_t>* ids) const {
  const PreTokenizerSpec& pre = spec_.pre_tokenizer;
  std::string prefixed;
  if (pre.add_prefix_space && piece.substr(0, 1) != " ") {
    prefixed = " " + std::string(piece);
    piece = prefixed;
  }
  if (pre.byte_level_regex == nullptr) {
    spec_.model->EncodeWord(piece, ids);
    return;
  }
  for (std::string_view word : SplitIsolated(*pre.byte_level_regex, {piece})) {
    spec_.model->EncodeWord(word, ids);
  }
}

std::string BpeTokenizer::DecodeBytes(const std::vector<int32_t>& ids,
                                      bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= size_ || (skip_special_tokens && special_[id])) continue;
    bytes.append(id_bytes_[id]);
  }
  return bytes;
}

std::string BpeTokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return Utf8Lossy(DecodeBytes(ids, skip_special_tokens));
}

std::optional<int32_t> BpeTokenizer::TokenToId(std::string_view token) const {
  auto it = added_ids_.find(AsAbsl(token));
  if (it != added_ids_.end()) return it->second;
  return spec_.model->TokenToId(token);
}

std::optional<std::string> BpeTokenizer::IdToToken(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return it->second->content;
  const std::string* token = spec_.model->IdToToken(id);
  if (token == nullptr) return std::nullopt;
  return *token;
}

bool BpeTokenizer::IsSpecial(int32_t id) const { return id >= 0 && id < size_ && special_[id]; }

}  // namespace vlmd::text
