#include "core/text/onig_regex.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vlmd::text {
namespace {

// The Split pattern of Qwen2's tokenizer.json.
constexpr char kQwen2Pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::vector<std::string> Matches(const OnigRegex& regex, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& [begin, end] : regex.FindAll(text))
    out.push_back(text.substr(begin, end - begin));
  return out;
}

TEST(TranslateOnigPatternTest, RewritesEscapesThatDiffer) {
  EXPECT_EQ(*TranslateOnigPattern("\\s+(?!\\S)"), "\\p{White_Space}+(?!\\P{White_Space})");
  EXPECT_EQ(*TranslateOnigPattern("[^\\s\\p{Lu}]"), "[^\\p{White_Space}\\p{Lu}]");
  EXPECT_EQ(*TranslateOnigPattern("\\h+"), "[0-9A-Fa-f]+");
  EXPECT_EQ(*TranslateOnigPattern("[\\h_]"), "[0-9A-Fa-f_]");
  EXPECT_EQ(*TranslateOnigPattern("\\v"), "\\x0B");
  EXPECT_EQ(*TranslateOnigPattern("\\u00A0"), "\\x{00A0}");
  EXPECT_EQ(*TranslateOnigPattern("[]a]\\[\\."), "[]a]\\[\\.");
  EXPECT_EQ(*TranslateOnigPattern("(?i:'s)"), "(?i:'s)");
}

TEST(TranslateOnigPatternTest, RefusesUnverifiedConstructs) {
  for (const char* pattern : {"\\w+", "\\bx", "(?m:.)", "[a[b]]", "[a&&b]", "[a", "\\k<x>"}) {
    auto translated = TranslateOnigPattern(pattern);
    EXPECT_EQ(translated.status().code(), absl::StatusCode::kUnimplemented) << pattern;
  }
}

// Oniguruma's \s is Unicode White_Space; PCRE2's \s would also take U+180E.
TEST(OnigRegexTest, WhiteSpaceMatchesOniguruma) {
  auto regex = OnigRegex::Compile("\\s", /*literal=*/false);
  ASSERT_TRUE(regex.ok()) << regex.status();
  for (const char* space : {"\xC2\xA0", "\xC2\x85", "\xE2\x80\xA8", "\xE3\x80\x80", "\x0B"}) {
    EXPECT_EQ(Matches(**regex, space).size(), 1u) << space;
  }
  for (const char* other : {"\xE1\xA0\x8E", "\xEF\xBB\xBF", "\xE2\x80\x8B", "\x1C"}) {
    EXPECT_TRUE(Matches(**regex, other).empty()) << other;
  }
}

// HF's Oniguruma has Unicode 16.0 tables, PCRE2 10.42 Unicode 14: L and N are topped up.
TEST(OnigRegexTest, LettersAndNumbersFollowUnicode16) {
  EXPECT_EQ(TranslateOnigPattern("\\p{L}")->rfind("[\\p{L}\\x{1c89}-\\x{1c8a}\\x{a7cb}", 0), 0u);
  EXPECT_EQ(TranslateOnigPattern("\\P{N}")->rfind("[^\\p{N}\\x{10d40}-\\x{10d49}\\x{116d0}", 0),
            0u);
  EXPECT_EQ(TranslateOnigPattern("[^\\P{L}]").status().code(), absl::StatusCode::kUnimplemented);
  const std::string cjk_ext_h = "\xF0\xB1\x8D\x90";      // U+31350 (Unicode 15.0, Lo)
  const std::string outlined_zero = "\xF0\x9C\xB3\xB0";  // U+1CCF0 (Unicode 16.0, Nd)
  auto letters = OnigRegex::Compile("\\p{L}+", false);
  auto numbers = OnigRegex::Compile("[\\p{N}]", false);
  auto non_letters = OnigRegex::Compile("\\P{L}", false);
  ASSERT_TRUE(letters.ok() && numbers.ok() && non_letters.ok());
  EXPECT_EQ(Matches(**letters, "x" + cjk_ext_h + "y"),
            std::vector<std::string>{"x" + cjk_ext_h + "y"});
  EXPECT_EQ(Matches(**numbers, outlined_zero), std::vector<std::string>{outlined_zero});
  EXPECT_TRUE(Matches(**non_letters, cjk_ext_h).empty());
}

TEST(OnigRegexTest, SplitsLikeQwen2) {
  auto regex = OnigRegex::Compile(kQwen2Pattern, /*literal=*/false);
  ASSERT_TRUE(regex.ok()) << regex.status();
  EXPECT_EQ(Matches(**regex, "Hello world's  \n\n foo123"),
            (std::vector<std::string>{"Hello", " world", "'s", "  \n\n", " foo", "1", "2", "3"}));
  EXPECT_EQ(Matches(**regex, "a  b"), (std::vector<std::string>{"a", " ", " b"}));
  EXPECT_EQ(Matches(**regex, "I'LL x'S"), (std::vector<std::string>{"I", "'LL", " x", "'S"}));
  EXPECT_EQ(Matches(**regex, "\\frac { a }"),
            (std::vector<std::string>{"\\frac", " {", " a", " }"}));
  // NBSP is \s: "a", NBSP (kept apart by the lookahead), " b".
  EXPECT_EQ(Matches(**regex, "a\xC2\xA0 b"), (std::vector<std::string>{"a", "\xC2\xA0", " b"}));
  // U+180E is not \s for Oniguruma, so it is punctuation-like and joins the space before it.
  EXPECT_EQ(Matches(**regex, "a \xE1\xA0\x8E"), (std::vector<std::string>{"a", " \xE1\xA0\x8E"}));
}

TEST(OnigRegexTest, LongRunsDoNotOverflow) {
  auto regex = OnigRegex::Compile(kQwen2Pattern, /*literal=*/false);
  ASSERT_TRUE(regex.ok());
  std::string spaces(1 << 20, ' ');
  auto matches = (*regex)->FindAll(spaces + "x");
  ASSERT_EQ(matches.size(), 2u);
  EXPECT_EQ(matches[0].second, spaces.size() - 1);
}

TEST(OnigRegexTest, LiteralAndRefusals) {
  auto literal = OnigRegex::Compile("a.b", /*literal=*/true);
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(Matches(**literal, "a.b axb"), std::vector<std::string>{"a.b"});
  EXPECT_EQ(OnigRegex::Compile("a*", false).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(OnigRegex::Compile("(a", false).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnigRegexTest, RustWordChars) {
  EXPECT_TRUE(IsRustWordChar(U'a'));
  EXPECT_TRUE(IsRustWordChar(U'_'));
  EXPECT_TRUE(IsRustWordChar(U'7'));
  EXPECT_TRUE(IsRustWordChar(U'\u4F60'));
  EXPECT_TRUE(IsRustWordChar(U'\u0301'));  // a mark
  EXPECT_TRUE(IsRustWordChar(U'\u200D'));  // Join_Control
  EXPECT_FALSE(IsRustWordChar(U' '));
  EXPECT_FALSE(IsRustWordChar(U'-'));
  EXPECT_FALSE(IsRustWordChar(U'\u00BD'));  // ½ is No, not Nd
}

}  // namespace
}  // namespace vlmd::text
