// Regular expressions written for Oniguruma (the engine Hugging Face tokenizers compiles
// pre-tokenizer patterns with), run by PCRE2 in UTF + Unicode-property mode with its JIT.
//
// The two engines read a few escapes differently. Oniguruma's `\s` is Unicode White_Space;
// PCRE2's (with UCP) also takes U+180E. Oniguruma's `\h` is a hex digit; PCRE2's is horizontal
// space. Those are rewritten; escapes whose Oniguruma meaning we have not verified (`\w`, `\b`,
// ...) and Ruby-style option letters are refused rather than guessed.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/status.h"

namespace vlmd::text {

// Rewrites an Oniguruma pattern into a PCRE2 pattern with the same meaning.
// UNIMPLEMENTED for constructs whose translation is not known.
StatusOr<std::string> TranslateOnigPattern(std::string_view pattern);

// A compiled pattern. Immutable and thread-safe; every call allocates its own match data.
class OnigRegex {
 public:
  // Compiles an Oniguruma pattern (translated first). `literal` compiles `pattern` as a plain
  // string instead (HF's Split {"String": ...}). Patterns that can match the empty string are
  // refused (UNIMPLEMENTED), since their splitting semantics differ between engines.
  static StatusOr<std::unique_ptr<OnigRegex>> Compile(std::string_view pattern, bool literal);
  ~OnigRegex();
  OnigRegex(const OnigRegex&) = delete;
  OnigRegex& operator=(const OnigRegex&) = delete;

  // All non-overlapping leftmost matches in `text` (valid UTF-8) as [begin, end) byte ranges.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  explicit OnigRegex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*
};

// True when `cp` is a word character in Rust's regex crate (`\w`: Alphabetic, marks, decimal
// numbers, connector punctuation, Join_Control), which HF uses for single_word added tokens.
bool IsRustWordChar(char32_t cp);

}  // namespace vlmd::text
