// Added tokens (special or not) of a tokenizer.json, found in text the way Hugging Face's
// AddedVocabulary does: leftmost-longest matches, then the single_word / lstrip / rstrip rules.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlmd::text {

// One entry of tokenizer.json's "added_tokens". Defaults are HF's AddedToken defaults.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;  // match only when not inside a word
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // the match swallows whitespace on its right
  bool normalized = true;    // matched in normalized text instead of raw text
  bool special = false;      // dropped by decoding with skip_special_tokens
};

// A run of text [begin, end): plain text when `token` is null, else that added token's match.
struct TextPiece {
  size_t begin = 0;
  size_t end = 0;
  const AddedToken* token = nullptr;
};

// Finds a fixed set of added tokens. Immutable once built; thread-safe.
class AddedTokenMatcher {
 public:
  // Registers `token` to be found as the string `pattern`. `token` must outlive the matcher.
  void Add(std::string_view pattern, const AddedToken* token);
  // True when nothing was registered.
  bool empty() const { return nodes_.size() <= 1; }
  // Cuts `text` (valid UTF-8) into plain-text and added-token pieces covering all of it, in order.
  std::vector<TextPiece> Split(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node index
    const AddedToken* token = nullptr;                  // set where a pattern ends
  };
  // Length and token of the longest pattern starting at text[pos], or {0, nullptr}.
  std::pair<size_t, const AddedToken*> LongestAt(std::string_view text, size_t pos) const;

  std::vector<Node> nodes_ = std::vector<Node>(1);
  std::bitset<256> first_bytes_;
};

}  // namespace vlmd::text
