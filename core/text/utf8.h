// UTF-8 helpers for the tokenizer: validation, the lossy repair Rust's String::from_utf8_lossy
// does (which Hugging Face tokenizers uses when decoding), Unicode normalization (utf8proc), and
// the few Unicode sets the added-token rules need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace vlmd::text {

// Debian's Abseil is built with its own string_view type; this bridges std::string_view to it
// for Abseil hash-map lookups and StrCat.
inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// Unicode normalization forms (the HF normalizers NFC, NFD, NFKC, NFKD).
enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Replaces each maximal ill-formed subsequence with U+FFFD (the Unicode "substitution of maximal
// subparts" practice), exactly as Rust's String::from_utf8_lossy does.
std::string Utf8Lossy(std::string_view bytes);

// Number of bytes at the end of `bytes` that form an incomplete but so far well-formed UTF-8
// sequence (0 to 3). Cutting them off leaves a prefix whose lossy decoding never changes when
// more bytes arrive, which is what streaming decoders need.
size_t IncompleteUtf8Tail(std::string_view bytes);

// Decodes the code point starting at `s[*pos]` and advances `*pos`. `s` must be valid UTF-8.
char32_t NextCodePoint(std::string_view s, size_t* pos);
// Decodes the code point that ends at `s[end - 1]`. `s` must be valid UTF-8 and `end` > 0.
char32_t PrevCodePoint(std::string_view s, size_t end);
// Appends the UTF-8 encoding of `cp`.
void AppendUtf8(char32_t cp, std::string* out);

// Normalizes valid UTF-8 with utf8proc. Returns `s` unchanged when it is pure ASCII.
std::string Normalize(std::string_view s, NormalForm form);

// Unicode White_Space: what `\s` means in Oniguruma and in Rust's regex crate.
bool IsWhiteSpace(char32_t cp);

}  // namespace vlmd::text
