// Hugging Face tokenizer.json byte-level BPE (the Qwen2 family): NFC normalizer, the Split
// pre-tokenizer regex (PCRE2), byte-level mapping, merges by rank, added/special tokens matched
// before pre-tokenization, and decoding back to UTF-8.
//
// Supported tokenizer.json parts (anything else is refused with an error naming the field):
// normalizer null, NFC, NFD, NFKC, NFKD or a Sequence of them; pre_tokenizer ByteLevel, or a
// Sequence of Split (Regex or String pattern, behavior Isolated, invert false) steps ending in
// ByteLevel; model BPE (no dropout, no byte fallback, no subword prefix/suffix); decoder
// ByteLevel. "truncation", "padding" and "post_processor" are ignored: Encode adds nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// Immutable after construction; every method is const and thread-safe.
class Tokenizer {
 public:
  // Loads a tokenizer.json file. Errors name the file and the unsupported or malformed field.
  static StatusOr<std::shared_ptr<const Tokenizer>> FromFile(const std::string& path);
  // `path` is a tokenizer.json or a directory holding one. If a directory has none, falls back
  // to `fallback_path` (the vocabulary setup.sh installs) when it is non-empty.
  static StatusOr<std::shared_ptr<const Tokenizer>> Load(const std::string& path,
                                                         const std::string& fallback_path = "");
  // Parses tokenizer.json text already in memory; `source_name` is used in error messages.
  static StatusOr<std::shared_ptr<const Tokenizer>> FromJson(std::string_view contents,
                                                             const std::string& source_name);
  virtual ~Tokenizer() = default;

  // Encodes text with no special tokens added; special/added token text maps to its id.
  // Invalid UTF-8 in `text` is first repaired to U+FFFD (HF only ever sees valid strings).
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // Decodes ids to UTF-8. Invalid UTF-8 byte sequences become U+FFFD, as HF does. Unknown ids
  // are dropped, as HF does.
  virtual std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  // The bytes Decode repairs into UTF-8: the concatenation of each id's bytes. Streaming
  // decoders use it to cut text only at character boundaries.
  virtual std::string DecodeBytes(const std::vector<int32_t>& ids,
                                  bool skip_special_tokens) const = 0;
  // Id of a token's string form (vocabulary or added token), or nullopt.
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // String form of an id (byte-level form for vocabulary tokens), or nullopt.
  virtual std::optional<std::string> IdToToken(int32_t id) const = 0;
  // True for added tokens marked "special" (skipped by Decode with skip_special_tokens).
  virtual bool IsSpecial(int32_t id) const = 0;
  // One more than the largest id known (vocabulary and added tokens).
  virtual int32_t Size() const = 0;
};

// Turns a stream of token ids into text pieces that are always whole UTF-8 characters, for
// streaming responses. The concatenation of every Add() result and Flush() equals
// Decode(all ids). Not thread-safe; one per sequence.
class IncrementalDecoder {
 public:
  // `skip_special_tokens` as in Tokenizer::Decode.
  IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens);
  // Adds one id; returns the newly completed text (possibly empty while a character is split).
  std::string Add(int32_t id);
  // Returns whatever is pending at the end (incomplete bytes become U+FFFD).
  std::string Flush();
  // All text emitted so far.
  const std::string& text() const { return text_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 character, held back until completed
  std::string text_;
};

}  // namespace vlmd
