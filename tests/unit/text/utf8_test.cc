#include "core/text/utf8.h"

#include "gtest/gtest.h"

namespace vlmd::text {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(Utf8LossyTest, KeepsValidText) {
  EXPECT_EQ(Utf8Lossy("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
            "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

// Expected values follow Rust's String::from_utf8_lossy (one U+FFFD per maximal subpart).
TEST(Utf8LossyTest, ReplacesMaximalSubparts) {
  EXPECT_EQ(Utf8Lossy("\xF0\x9F"), kFffd);  // truncated at the end
  EXPECT_EQ(Utf8Lossy("\xE2\x82"
                      "A"),
            std::string(kFffd) + "A");  // truncated in the middle
  EXPECT_EQ(Utf8Lossy("a\x80"
                      "b"),
            "a" + std::string(kFffd) + "b");
  EXPECT_EQ(Utf8Lossy("\xF0\x80\x80"), Repeat(kFffd, 3));      // F0 needs 90..BF next
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), Repeat(kFffd, 3));      // a surrogate
  EXPECT_EQ(Utf8Lossy("\xC0\xAF"), Repeat(kFffd, 2));          // an overlong
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80"), Repeat(kFffd, 4));  // above U+10FFFF
  EXPECT_EQ(Utf8Lossy("\xFF\xFE"), Repeat(kFffd, 2));
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"
                      "\xF0\x9F\x98\x80"),
            std::string(kFffd) + "\xF0\x9F\x98\x80");
}

TEST(Utf8Test, Validates) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("abc\xE4\xBD\xA0\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xE4\xBD"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC1\x81"));
}

TEST(Utf8Test, IncompleteTail) {
  EXPECT_EQ(IncompleteUtf8Tail(""), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xE2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0"), 1u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x9F\x98\x80"), 0u);  // complete
  EXPECT_EQ(IncompleteUtf8Tail("\xE2"
                               "A"),
            0u);                                  // already ill-formed
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x80"), 0u);  // can never complete
  EXPECT_EQ(IncompleteUtf8Tail("\xED\xA0"), 0u);  // would be a surrogate
  EXPECT_EQ(IncompleteUtf8Tail("\x80\x80\x80"), 0u);
}

TEST(Utf8Test, CodePoints) {
  std::string s = "a\xC3\xA9\xF0\x9F\x98\x80";
  size_t pos = 0;
  EXPECT_EQ(NextCodePoint(s, &pos), U'a');
  EXPECT_EQ(NextCodePoint(s, &pos), U'\u00E9');
  EXPECT_EQ(NextCodePoint(s, &pos), U'\U0001F600');
  EXPECT_EQ(pos, s.size());
  EXPECT_EQ(PrevCodePoint(s, s.size()), U'\U0001F600');
  EXPECT_EQ(PrevCodePoint(s, 3), U'\u00E9');
  std::string out;
  for (char32_t cp : {U'a', U'\u00E9', U'\u20AC', U'\U0001F600'}) AppendUtf8(cp, &out);
  EXPECT_EQ(out, "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST(NormalizeTest, Forms) {
  EXPECT_EQ(Normalize("e\xCC\x81", NormalForm::kNFC), "\xC3\xA9");
  EXPECT_EQ(Normalize("\xE2\x84\xAB", NormalForm::kNFC), "\xC3\x85");      // Angstrom sign -> Å
  EXPECT_EQ(Normalize("\xEF\xAC\x81", NormalForm::kNFC), "\xEF\xAC\x81");  // ligature kept
  EXPECT_EQ(Normalize("\xEF\xAC\x81", NormalForm::kNFKC), "fi");
  EXPECT_EQ(Normalize("\xC3\xA9", NormalForm::kNFD), "e\xCC\x81");
  EXPECT_EQ(Normalize(std::string("a\0b", 3), NormalForm::kNFC), std::string("a\0b", 3));
  EXPECT_EQ(Normalize(std::string("\xC3\xA9\0", 3), NormalForm::kNFD),
            std::string("e\xCC\x81\0", 4));
}

TEST(WhiteSpaceTest, IsUnicodeWhiteSpace) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(IsWhiteSpace(cp)) << std::hex << cp;
  }
  for (char32_t cp : {0x08, 0x1C, 0x1F, 0x21, 0x180E, 0x200B, 0xFEFF, 0x2060}) {
    EXPECT_FALSE(IsWhiteSpace(cp)) << std::hex << cp;
  }
}

}  // namespace
}  // namespace vlmd::text
