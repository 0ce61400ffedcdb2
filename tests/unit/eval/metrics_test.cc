// Metric functions against values computed by hand (the arithmetic is in the comments).
#include "core/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vlmd::eval {
namespace {

TEST(TrimTextTest, RemovesUnicodeWhiteSpaceOnly) {
  EXPECT_EQ(TrimText("  x^2 \n\t"), "x^2");
  EXPECT_EQ(TrimText("\u3000公式\u00a0"), "公式");  // ideographic space, no-break space
  EXPECT_EQ(TrimText(" \n "), "");
  EXPECT_EQ(TrimText(""), "");
  EXPECT_EQ(TrimText("a  b"), "a  b");  // inner spaces stay
}

TEST(ExactMatchTest, AfterTrimmingNothingElse) {
  EXPECT_TRUE(ExactMatch("  x^2 \n", "x^2"));
  EXPECT_TRUE(ExactMatch("", ""));
  EXPECT_TRUE(ExactMatch(" ", ""));
  EXPECT_FALSE(ExactMatch("a", "A"));             // no case folding
  EXPECT_FALSE(ExactMatch("a b", "a  b"));        // inner whitespace counts
  EXPECT_FALSE(ExactMatch("\u00e9", "e\u0301"));  // no Unicode normalization
  EXPECT_TRUE(ExactMatch("😀 数学", "😀 数学\n"));
}

TEST(CodePointsTest, CountsCodePointsNotBytes) {
  EXPECT_EQ(CodePoints("数学").size(), 2u);
  EXPECT_EQ(CodePoints("😀").size(), 1u);
  EXPECT_EQ(CodePoints("e\u0301").size(), 2u);  // base letter + combining acute
  EXPECT_EQ(CodePoints("a\xff").size(), 2u);    // ill-formed byte -> U+FFFD
  EXPECT_EQ(CodePoints("a\xff")[1], U'\uFFFD');
}

TEST(SplitTokensTest, RunsOfWhiteSpaceSeparate) {
  EXPECT_EQ(SplitTokens("  a\t b\n\nc  "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(SplitTokens("\\frac { a }"), (std::vector<std::string>{"\\frac", "{", "a", "}"}));
  EXPECT_EQ(SplitTokens("x\u3000y"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(SplitTokens(" \n").empty());
}

TEST(LevenshteinTest, ClassicCases) {
  EXPECT_EQ(Levenshtein(CodePoints("kitten"), CodePoints("sitting")), 3);
  EXPECT_EQ(Levenshtein(CodePoints(""), CodePoints("abc")), 3);
  EXPECT_EQ(Levenshtein(CodePoints("abc"), CodePoints("")), 3);
  EXPECT_EQ(Levenshtein(CodePoints("flaw"), CodePoints("lawn")), 2);
  EXPECT_EQ(Levenshtein(SplitTokens("a b c"), SplitTokens("a x c d")), 2);
}

TEST(EditSimilarityCharsTest, HandComputed) {
  EXPECT_DOUBLE_EQ(EditSimilarityChars("", ""), 1.0);
  EXPECT_DOUBLE_EQ(EditSimilarityChars("  ", "\n"), 1.0);  // both empty after trimming
  EXPECT_DOUBLE_EQ(EditSimilarityChars("abc", ""), 0.0);
  EXPECT_DOUBLE_EQ(EditSimilarityChars("", "abc"), 0.0);
  EXPECT_DOUBLE_EQ(EditSimilarityChars("abc", "abc"), 1.0);
  EXPECT_DOUBLE_EQ(EditSimilarityChars("abc", "xyz"), 0.0);  // 3 substitutions / 3
  EXPECT_DOUBLE_EQ(EditSimilarityChars("kitten", "sitting"), 1.0 - 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(EditSimilarityChars(" kitten\n", "sitting"), 1.0 - 3.0 / 7.0);
}

TEST(EditSimilarityCharsTest, UnicodeIsCodePoints) {
  // "a数" vs "ab": one substitution over 2 code points (bytes would give 1 - 3/4).
  EXPECT_DOUBLE_EQ(EditSimilarityChars("a数", "ab"), 0.5);
  // 😀 (F0 9F 98 80) vs 😃 (F0 9F 98 83): 1 of 2 code points (bytes would give 1 - 1/5).
  EXPECT_DOUBLE_EQ(EditSimilarityChars("😀x", "😃x"), 0.5);
  EXPECT_DOUBLE_EQ(EditSimilarityChars("数学公式", "数学公试"), 0.75);
  // A combining mark is a code point of its own: "e" + U+0301 vs "e" is one insertion of 2.
  EXPECT_DOUBLE_EQ(EditSimilarityChars("e\u0301", "e"), 0.5);
  // Precomposed é vs e + U+0301: substitute + insert over 2 (no normalization).
  EXPECT_DOUBLE_EQ(EditSimilarityChars("\u00e9", "e\u0301"), 0.0);
}

TEST(EditSimilarityTokensTest, HandComputed) {
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("", ""), 1.0);
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("x", ""), 0.0);
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("a  b\n", "a b"), 1.0);
  // 7 LaTeX tokens each, one substituted.
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("\\frac { a } { b }", "\\frac { a } { c }"), 6.0 / 7.0);
  // "x ^ 2" vs "x ^ { 2 }": 2 insertions over max(3, 5).
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("x ^ 2", "x ^ { 2 }"), 1.0 - 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("数 学", "数 学"), 1.0);
  EXPECT_DOUBLE_EQ(EditSimilarityTokens("a b", "c d"), 0.0);
}

TEST(BleuStatsTest, ClippedCounts) {
  // "the the the the" vs "the cat": unigram "the" clipped to 1 of 4.
  BleuStats s = ComputeBleuStats(SplitTokens("the the the the"), SplitTokens("the cat"));
  EXPECT_EQ(s.matches[0], 1);
  EXPECT_EQ(s.totals[0], 4);
  EXPECT_EQ(s.matches[1], 0);
  EXPECT_EQ(s.totals[1], 3);
  EXPECT_EQ(s.totals[2], 2);
  EXPECT_EQ(s.totals[3], 1);
  EXPECT_EQ(s.hyp_length, 4);
  EXPECT_EQ(s.ref_length, 2);
}

TEST(SentenceBleuTest, EdgeCases) {
  EXPECT_DOUBLE_EQ(SentenceBleu("", ""), 1.0);
  EXPECT_DOUBLE_EQ(SentenceBleu("", "a b c d"), 0.0);
  EXPECT_DOUBLE_EQ(SentenceBleu("a b c d", ""), 0.0);
  EXPECT_DOUBLE_EQ(SentenceBleu("a b c", "x y z"), 0.0);  // no unigram match
  EXPECT_DOUBLE_EQ(SentenceBleu("a b c d e", " a b c d e\n"), 1.0);
  // Identical 2-token strings: p = 1, 1, 0.1/1, 0.1/1 -> 0.01^(1/4).
  EXPECT_NEAR(SentenceBleu("a b", "a b"), 0.31622776601683794, 1e-12);
  // Identical in CJK / emoji tokens.
  EXPECT_DOUBLE_EQ(SentenceBleu("数 学 公 式 😀", "数 学 公 式 😀"), 1.0);
}

TEST(SentenceBleuTest, HandComputed) {
  // hyp "the cat sat on the mat", ref "the cat is on the mat" (6 tokens each, BP = 1):
  // p1 = 5/6, p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0 -> 0.1/3.
  EXPECT_NEAR(SentenceBleu("the cat sat on the mat", "the cat is on the mat"), 0.25406637407730737,
              1e-12);
  // Brevity: 4 of 6 tokens, all precisions 1 -> exp(1 - 6/4).
  EXPECT_NEAR(SentenceBleu("a b c d", "a b c d e f"), 0.6065306597126334, 1e-12);
  // Clipping: p1 = 1/4, p2 = 0.1/3, p3 = 0.1/2, p4 = 0.1/1; c = 4 > r = 2 so BP = 1.
  EXPECT_NEAR(SentenceBleu("the the the the", "the cat"), 0.08034284189446518, 1e-12);
  // Short and smoothed: "x ^ 2" vs "x ^ { 2 }": p = 3/3, 1/2, 0.1/1, 0.1/max(1, 0); c = 3 < r = 5.
  EXPECT_NEAR(SentenceBleu("x ^ 2", "x ^ { 2 }"), 0.13652520787861755, 1e-12);
  // LaTeX tokens: p = 6/7, 4/6, 3/5, 2/4 -> (144/840)^(1/4).
  EXPECT_NEAR(SentenceBleu("\\frac { a } { b }", "\\frac { a } { c }"), 0.6434588841607617, 1e-12);
}

TEST(CorpusBleuTest, SumsStatisticsWithoutSmoothing) {
  BleuStats total;
  total.Add(ComputeBleuStats(SplitTokens("the cat sat on the mat"),
                             SplitTokens("the cat is on the mat")));
  total.Add(ComputeBleuStats(SplitTokens("a b c d"), SplitTokens("a b c d")));
  // p1 = 9/10, p2 = 6/8, p3 = 3/6, p4 = 1/4, c = r = 10.
  EXPECT_NEAR(CorpusBleu(total), 0.5389561679446263, 1e-12);
  // The first sentence alone has no 4-gram match: unsmoothed corpus BLEU is 0.
  EXPECT_DOUBLE_EQ(CorpusBleu(ComputeBleuStats(SplitTokens("the cat sat on the mat"),
                                               SplitTokens("the cat is on the mat"))),
                   0.0);
  EXPECT_DOUBLE_EQ(CorpusBleu(BleuStats()), 1.0);  // nothing on either side
  EXPECT_DOUBLE_EQ(CorpusBleu(ComputeBleuStats({}, SplitTokens("a b c d"))), 0.0);
  BleuStats same = ComputeBleuStats(SplitTokens("a b c d e"), SplitTokens("a b c d e"));
  EXPECT_DOUBLE_EQ(CorpusBleu(same), 1.0);
}

}  // namespace
}  // namespace vlmd::eval
