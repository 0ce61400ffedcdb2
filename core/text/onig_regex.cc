#include "core/text/onig_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/text/utf8.h"

namespace vlmd::text {
namespace {

constexpr char kHexDigits[] = "0-9A-Fa-f";

Status Unsupported(std::string_view pattern, size_t pos, std::string_view what) {
  return absl::UnimplementedError(absl::StrCat("regex \"", AsAbsl(pattern), "\": ", AsAbsl(what),
                                               " at offset ", pos, " is not supported"));
}

struct Range {
  char32_t first;
  char32_t last;
};

// Letters (general category L) and numbers (N) assigned in Unicode 15.0 to 16.0. PCRE2 10.42
// (Debian 12) has Unicode 14 tables; the Oniguruma inside HF tokenizers >= 0.21.2 (onig 6.5.1,
// Oniguruma commit 94877ac) has Unicode 16.0 ones. Appending these makes \p{L} and \p{N} agree;
// with a newer PCRE2 they are merely redundant. (Computed as Oniguruma's CR_L / CR_N ranges
// minus what PCRE2 10.42 matches.)
constexpr Range kNewLetters[] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3},
    {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x1123F, 0x11240},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5},
    {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0},
    {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F},
    {0x13441, 0x13446}, {0x13460, 0x143FA}, {0x16100, 0x1611D}, {0x16D40, 0x16D6C},
    {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A},
    {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5F0},
    {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF},
};
constexpr Range kNewNumbers[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11F50, 0x11F59},
    {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3},
    {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA},
};

// The body of a character class matching general category L or N with Unicode 16.0 data.
template <size_t N>
std::string CategoryClassBody(std::string_view property, const Range (&extra)[N]) {
  std::string body = absl::StrCat("\\p{", AsAbsl(property), "}");
  for (const Range& range : extra) {
    absl::StrAppend(&body, "\\x{", absl::Hex(range.first), "}-\\x{", absl::Hex(range.last), "}");
  }
  return body;
}

// Translates \p{L}, \P{L}, \p{^L} (and N) to classes with Unicode 16.0 data. Returns false for
// other properties, which are copied unchanged.
StatusOr<bool> TranslateCategory(std::string_view p, size_t i, std::string_view body, bool in_class,
                                 std::string* out) {
  bool negated = p[i + 1] == 'P';
  if (!body.empty() && body[0] == '^') {
    negated = !negated;
    body.remove_prefix(1);
  }
  std::string members;
  if (body == "L") {
    members = CategoryClassBody(body, kNewLetters);
  } else if (body == "N") {
    members = CategoryClassBody(body, kNewNumbers);
  } else {
    return false;
  }
  if (in_class && negated) return Unsupported(p, i, "a negated L or N property inside a class");
  absl::StrAppend(out, in_class ? "" : negated ? "[^" : "[", members, in_class ? "" : "]");
  return true;
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Translates `\p{..}`, `\P{..}` and `\x{..}` / `\xHH` at p[i]; returns the bytes consumed.
StatusOr<size_t> TranslateBracedEscape(std::string_view p, size_t i, bool in_class,
                                       std::string* out) {
  char e = p[i + 1];
  if (i + 2 >= p.size() || p[i + 2] != '{') {
    if (e != 'x') return Unsupported(p, i, "a one-letter property escape");
    out->append(p.substr(i, 2));  // \xHH: the digits follow as plain characters
    return 2;
  }
  size_t close = p.find('}', i + 2);
  if (close == std::string_view::npos) return Unsupported(p, i, "an unclosed \\p{ or \\x{");
  if (e != 'x') {
    ASSIGN_OR_RETURN(bool done,
                     TranslateCategory(p, i, p.substr(i + 3, close - i - 3), in_class, out));
    if (done) return close + 1 - i;
  }
  out->append(p.substr(i, close + 1 - i));
  return close + 1 - i;
}

// The PCRE2 form of a one-letter escape `\e`, or nullopt when it is not supported.
std::optional<std::string> LetterEscape(char e, bool in_class) {
  switch (e) {
    case 's':
      return "\\p{White_Space}";
    case 'S':
      return "\\P{White_Space}";
    case 'h':
      return absl::StrCat(in_class ? "" : "[", kHexDigits, in_class ? "" : "]");
    case 'H':
      if (in_class) return std::nullopt;
      return absl::StrCat("[^", kHexDigits, "]");
    case 'v':  // Oniguruma: vertical tab; PCRE2: any vertical space.
      return "\\x0B";
    case 'b':  // backspace inside a class; a word boundary (not supported) outside
      if (!in_class) return std::nullopt;
      return "\\x08";
    default:
      break;
  }
  // Same meaning in both engines (\d is Decimal_Number in both with UCP).
  constexpr std::string_view kSame = "dDnrtfaeAzZ";
  if (kSame.find(e) != std::string_view::npos) return std::string("\\") + e;
  return std::nullopt;
}

// Translates the escape starting at pattern[i] == '\\'. Returns the number of pattern bytes it
// consumed.
StatusOr<size_t> TranslateEscape(std::string_view p, size_t i, bool in_class, std::string* out) {
  if (i + 1 >= p.size()) return Unsupported(p, i, "a trailing backslash");
  char e = p[i + 1];
  if (e == 'p' || e == 'P' || e == 'x') return TranslateBracedEscape(p, i, in_class, out);
  if (e == 'u' && i + 5 < p.size() && IsHex(p[i + 2]) && IsHex(p[i + 3]) && IsHex(p[i + 4]) &&
      IsHex(p[i + 5])) {
    absl::StrAppend(out, "\\x{", AsAbsl(p.substr(i + 2, 4)), "}");
    return 6;
  }
  bool alnum = (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9');
  if (!alnum) {
    out->append(p.substr(i, 2));  // an escaped punctuation or non-ASCII byte: a literal
    return 2;
  }
  std::optional<std::string> replacement = LetterEscape(e, in_class);
  if (!replacement) {
    return Unsupported(
        p, i, absl::StrCat("the escape \\", std::string(1, e), in_class ? " inside a class" : ""));
  }
  out->append(*replacement);
  return 2;
}

// Checks the prefix of a group "(?..." for Ruby option letters other than `i`.
Status CheckGroupOptions(std::string_view p, size_t i) {
  size_t k = i + 2;
  while (k < p.size() && (p[k] == 'i' || p[k] == 'm' || p[k] == 'x' || p[k] == '-')) {
    if (p[k] != 'i' && p[k] != '-') {
      return Unsupported(p, i, "an inline option other than i (Ruby's m means dotall)");
    }
    ++k;
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::string> TranslateOnigPattern(std::string_view p) {
  std::string out;
  bool in_class = false;
  size_t class_body = 0;  // offset of the first byte of the current class body
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\\') {
      ASSIGN_OR_RETURN(size_t used, TranslateEscape(p, i, in_class, &out));
      i += used;
      continue;
    }
    if (in_class) {
      if (c == '[') return Unsupported(p, i, "a nested class or POSIX bracket");
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') {
        return Unsupported(p, i, "a class intersection");
      }
      if (c == ']' && i != class_body) in_class = false;
    } else if (c == '[') {
      in_class = true;
      bool negated = i + 1 < p.size() && p[i + 1] == '^';
      class_body = i + (negated ? 2 : 1);
      out.append(p.substr(i, class_body - i));
      i = class_body;
      continue;
    } else if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
      RETURN_IF_ERROR(CheckGroupOptions(p, i));
    }
    out.push_back(c);
    ++i;
  }
  if (in_class) return Unsupported(p, p.size(), "an unclosed character class");
  return out;
}

StatusOr<std::unique_ptr<OnigRegex>> OnigRegex::Compile(std::string_view pattern, bool literal) {
  std::string translated;
  uint32_t options = PCRE2_UTF;
  if (literal) {
    translated = std::string(pattern);
    options |= PCRE2_LITERAL;
  } else {
    ASSIGN_OR_RETURN(translated, TranslateOnigPattern(pattern));
    // Ruby syntax (Oniguruma's default): ^ and $ are always line anchors.
    options |= PCRE2_UCP | PCRE2_MULTILINE;
  }
  pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(context, PCRE2_NEWLINE_LF);  // Oniguruma: `.` excludes only \n
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), options, &error, &offset, context);
  pcre2_compile_context_free(context);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrCat("regex \"", AsAbsl(pattern),
                                                   "\": ", reinterpret_cast<char*>(message),
                                                   " at offset ", offset));
  }
  std::unique_ptr<OnigRegex> regex(new OnigRegex(code));
  uint32_t min_length = 0;
  pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &min_length);
  if (min_length == 0) return Unsupported(pattern, 0, "a pattern that can match empty text");
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // without a JIT, pcre2_match interprets
  return regex;
}

OnigRegex::~OnigRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> OnigRegex::FindAll(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // the interpreter keeps its backtracking on the heap
      rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data,
                       nullptr);
    }
    if (rc < 0) {
      if (rc != PCRE2_ERROR_NOMATCH) {
        // The rest of the text stays one piece: still encoded, only split differently.
        VLMD_LOG(Warning) << "tokenizer regex match failed with PCRE2 error " << rc;
      }
      break;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    if (ovector[1] == ovector[0]) {  // refused at compile time; guard against looping anyway
      start = ovector[0];
      if (start < text.size()) NextCodePoint(text, &start);
      continue;
    }
    matches.emplace_back(ovector[0], ovector[1]);
    start = ovector[1];
  }
  pcre2_match_data_free(data);
  return matches;
}

bool IsRustWordChar(char32_t cp) {
  static const OnigRegex* const kWord = [] {
    auto compiled = OnigRegex::Compile("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]",
                                       /*literal=*/false);
    return compiled.ok() ? compiled->release() : nullptr;
  }();
  if (kWord == nullptr) return false;
  std::string encoded;
  AppendUtf8(cp, &encoded);
  auto found = kWord->FindAll(encoded);
  return !found.empty() && found[0].first == 0;
}

}  // namespace vlmd::text
