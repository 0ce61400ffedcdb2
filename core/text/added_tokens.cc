#include "core/text/added_tokens.h"

#include <algorithm>

#include "core/text/onig_regex.h"
#include "core/text/utf8.h"

namespace vlmd::text {
namespace {

int32_t FindChild(const std::vector<std::pair<uint8_t, int32_t>>& children, uint8_t b) {
  for (const auto& [byte, index] : children) {
    if (byte == b) return index;
  }
  return -1;
}

// HF tests single_word with Rust regexes `\w$` before the match and `^\w` after it.
bool EndsWithWord(std::string_view s) {
  return !s.empty() && IsRustWordChar(PrevCodePoint(s, s.size()));
}

bool StartsWithWord(std::string_view s) {
  size_t pos = 0;
  return !s.empty() && IsRustWordChar(NextCodePoint(s, &pos));
}

// Offset where the run of White_Space that ends `s` begins (HF: `\s*$`).
size_t TrailingSpaceStart(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!IsWhiteSpace(NextCodePoint(s, &pos))) break;
    end = start;
  }
  return end;
}

// Length of the run of White_Space that starts `s` (HF: `^\s*`).
size_t LeadingSpaceLength(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!IsWhiteSpace(NextCodePoint(s, &next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

void AddedTokenMatcher::Add(std::string_view pattern, const AddedToken* token) {
  if (pattern.empty()) return;  // HF ignores empty added tokens
  int32_t node = 0;
  for (char c : pattern) {
    uint8_t b = static_cast<uint8_t>(c);
    int32_t child = FindChild(nodes_[node].children, b);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(b, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  nodes_[node].token = token;
  first_bytes_.set(static_cast<uint8_t>(pattern[0]));
}

std::pair<size_t, const AddedToken*> AddedTokenMatcher::LongestAt(std::string_view text,
                                                                  size_t pos) const {
  std::pair<size_t, const AddedToken*> best{0, nullptr};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = FindChild(nodes_[node].children, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token != nullptr) best = {i + 1 - pos, nodes_[node].token};
  }
  return best;
}

std::vector<TextPiece> AddedTokenMatcher::Split(std::string_view text) const {
  std::vector<TextPiece> pieces;
  size_t done = 0;  // end of the last piece emitted
  size_t pos = 0;
  while (pos < text.size()) {
    if (!first_bytes_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    auto [length, token] = LongestAt(text, pos);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;
    if (token->single_word && ((start > 0 && EndsWithWord(text.substr(0, start))) ||
                               (stop < text.size() && StartsWithWord(text.substr(stop))))) {
      continue;
    }
    if (token->lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), done);
    if (token->rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (done < start) pieces.push_back({done, start, nullptr});
    pieces.push_back({start, stop, token});
    done = stop;
    pos = std::max(pos, stop);
  }
  if (done < text.size()) pieces.push_back({done, text.size(), nullptr});
  return pieces;
}

}  // namespace vlmd::text
