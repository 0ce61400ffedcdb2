// The Tokenizer implementation for byte-level BPE tokenizer.json files (internal to core/text).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/text/added_tokens.h"
#include "core/text/bpe_model.h"
#include "core/text/onig_regex.h"
#include "core/text/tokenizer.h"
#include "core/text/utf8.h"

namespace vlmd::text {

// The pre_tokenizer of tokenizer.json: Split steps, then ByteLevel.
struct PreTokenizerSpec {
  std::vector<std::unique_ptr<OnigRegex>> splits;  // Split steps (behavior Isolated), in order
  bool add_prefix_space = false;                   // ByteLevel: prepend " " to each piece
  std::unique_ptr<OnigRegex> byte_level_regex;     // ByteLevel use_regex (GPT-2's); null if off
};

// Everything parsed from one tokenizer.json.
struct TokenizerSpec {
  std::vector<NormalForm> normalizers;  // applied in order; empty for "normalizer": null
  std::vector<AddedToken> added_tokens;
  PreTokenizerSpec pre_tokenizer;
  std::unique_ptr<BpeModel> model;
};

// Encodes as HF's TokenizerImpl does: added tokens cut out of the raw text, normalization of the
// rest, added tokens marked "normalized" cut out of that, pre-tokenization, BPE per piece.
class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(TokenizerSpec spec);

  // Tokenizer's interface; see core/text/tokenizer.h.
  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  std::string DecodeBytes(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  std::optional<std::string> IdToToken(int32_t id) const override;
  bool IsSpecial(int32_t id) const override;
  int32_t Size() const override { return size_; }

 private:
  std::string NormalizeText(std::string_view text) const;
  // Normalizes a run of raw text between added tokens and encodes it.
  void EncodeRawRun(std::string_view text, std::vector<int32_t>* ids) const;
  // Pre-tokenizes normalized text and runs BPE on each piece.
  void EncodeNormalizedRun(std::string_view text, std::vector<int32_t>* ids) const;
  // The ByteLevel pre-tokenizer step on one piece, then BPE.
  void EncodeByteLevel(std::string_view piece, std::vector<int32_t>* ids) const;
  // Builds per-id decoding bytes and special flags.
  void BuildDecodeTables();

  TokenizerSpec spec_;
  AddedTokenMatcher raw_matcher_;         // added tokens with normalized = false
  AddedTokenMatcher normalized_matcher_;  // added tokens with normalized = true
  absl::flat_hash_map<std::string, int32_t> added_ids_;
  absl::flat_hash_map<int32_t, const AddedToken*> added_by_id_;
  std::vector<std::string> id_bytes_;  // what the ByteLevel decoder makes of each id
  std::vector<bool> special_;
  int32_t size_ = 0;
};

// Builds a tokenizer from tokenizer.json text. Errors name `source_name` and the field.
StatusOr<std::shared_ptr<const Tokenizer>> ParseTokenizerJson(std::string_view contents,
                                                              const std::string& source_name);

}  // namespace vlmd::text
