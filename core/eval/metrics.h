// Generation metrics that compare a prediction with its reference text: exact match,
// normalized edit distance on Unicode code points and on space-separated tokens, and BLEU-4
// (sentence and corpus) on tokens. Every function first trims both strings (TrimText) and
// reads them as UTF-8, replacing ill-formed bytes with U+FFFD. No torch; thread-safe (pure
// functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vlmd::eval {

// `text` without leading and trailing Unicode White_Space (space, tab, newlines, U+00A0,
// U+3000, ...). Nothing else is normalized: no case folding, no Unicode normalization.
std::string TrimText(std::string_view text);

// The code points of `text` (ill-formed UTF-8 becomes U+FFFD per maximal subpart). A base
// letter and a combining mark are two code points.
std::vector<char32_t> CodePoints(std::string_view text);

// Tokens of `text`: maximal runs of non-White_Space code points (Python's str.split()), so
// "\frac { a }" is 3 tokens and runs of spaces or newlines never yield empty tokens.
std::vector<std::string> SplitTokens(std::string_view text);

// True when the trimmed strings are byte-for-byte equal.
bool ExactMatch(std::string_view prediction, std::string_view reference);

// Levenshtein distance (insert, delete, substitute each cost 1) between two sequences.
int64_t Levenshtein(const std::vector<char32_t>& a, const std::vector<char32_t>& b);
int64_t Levenshtein(const std::vector<std::string>& a, const std::vector<std::string>& b);

// 1 - Levenshtein / max(len) on the code points of the trimmed strings: 1 = identical,
// 0 = nothing in common at the same length. Both empty -> 1.0.
double EditSimilarityChars(std::string_view prediction, std::string_view reference);
// The same on SplitTokens. Both without tokens -> 1.0.
double EditSimilarityTokens(std::string_view prediction, std::string_view reference);

// Clipped n-gram statistics of one hypothesis against one reference (BLEU's ingredients).
struct BleuStats {
  static constexpr int kMaxOrder = 4;
  int64_t matches[kMaxOrder] = {0, 0, 0, 0};  // clipped n-gram matches, n = 1..4
  int64_t totals[kMaxOrder] = {0, 0, 0, 0};   // hypothesis n-grams, n = 1..4
  int64_t hyp_length = 0, ref_length = 0;     // tokens
  // Adds another sample's counts (corpus BLEU sums them).
  void Add(const BleuStats& other);
};
BleuStats ComputeBleuStats(const std::vector<std::string>& hypothesis,
                           const std::vector<std::string>& reference);

// Sentence BLEU-4 on SplitTokens, uniform weights, one reference:
//   BLEU = BP * exp(sum_n log(p_n) / 4),  BP = 1 if c > r else exp(1 - r / c),
// where p_n = clipped matches / hypothesis n-grams. Smoothing is method 1 of Chen & Cherry
// (2014), "add epsilon" with epsilon = 0.1: an order with 0 matches uses 0.1 / max(1, n-grams)
// instead of 0. As NLTK's sentence_bleu(..., SmoothingFunction().method1): 0 when no unigram
// matches or the hypothesis is empty; 1.0 when both have no tokens. A hypothesis of fewer than
// 4 tokens scores below 1 even when identical (its missing orders get the epsilon).
double SentenceBleu(std::string_view prediction, std::string_view reference);

// Standard (unsmoothed) corpus BLEU-4 from summed statistics: the same formula with p_n =
// sum of matches / sum of n-grams and BP on the summed lengths. 0 when any order has no match;
// 1.0 when the whole corpus has no tokens on either side.
double CorpusBleu(const BleuStats& total);

}  // namespace vlmd::eval
