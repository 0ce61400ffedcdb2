#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/text/utf8.h"

namespace vlmd::eval {
namespace {

constexpr double kSmoothingEpsilon = 0.1;  // Chen & Cherry method 1 (NLTK's default epsilon)

// Row-by-row dynamic programme over two sequences of comparable items.
template <typename T>
int64_t EditDistance(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.empty()) return static_cast<int64_t>(b.size());
  if (b.empty()) return static_cast<int64_t>(a.size());
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <typename T>
double Similarity(const std::vector<T>& a, const std::vector<T>& b) {
  const size_t longest = std::max(a.size(), b.size());
  if (longest == 0) return 1.0;
  return 1.0 - static_cast<double>(EditDistance(a, b)) / static_cast<double>(longest);
}

using NgramCounts = std::map<std::vector<std::string>, int64_t>;

NgramCounts CountNgrams(const std::vector<std::string>& tokens, size_t n) {
  NgramCounts counts;
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    ++counts[std::vector<std::string>(tokens.begin() + i, tokens.begin() + i + n)];
  }
  return counts;
}

double BrevityPenalty(int64_t hyp_length, int64_t ref_length) {
  if (hyp_length > ref_length) return 1.0;
  if (hyp_length == 0) return 0.0;
  return std::exp(1.0 - static_cast<double>(ref_length) / static_cast<double>(hyp_length));
}

}  // namespace

std::string TrimText(std::string_view text) {
  const std::string valid = text::Utf8Lossy(text);
  const std::string_view s(valid);
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t next = begin;
    if (!text::IsWhiteSpace(text::NextCodePoint(s, &next))) break;
    begin = next;
  }
  while (end > begin) {
    char32_t cp = text::PrevCodePoint(s, end);
    if (!text::IsWhiteSpace(cp)) break;
    std::string encoded;
    text::AppendUtf8(cp, &encoded);
    end -= encoded.size();
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<char32_t> CodePoints(std::string_view text) {
  const std::string valid = text::Utf8Lossy(text);
  std::vector<char32_t> out;
  for (size_t pos = 0; pos < valid.size();) out.push_back(text::NextCodePoint(valid, &pos));
  return out;
}

std::vector<std::string> SplitTokens(std::string_view text) {
  const std::string valid = text::Utf8Lossy(text);
  std::vector<std::string> tokens;
  std::string current;
  for (size_t pos = 0; pos < valid.size();) {
    const size_t start = pos;
    if (text::IsWhiteSpace(text::NextCodePoint(valid, &pos))) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    } else {
      current.append(valid, start, pos - start);
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

bool ExactMatch(std::string_view prediction, std::string_view reference) {
  return TrimText(prediction) == TrimText(reference);
}

int64_t Levenshtein(const std::vector<char32_t>& a, const std::vector<char32_t>& b) {
  return EditDistance(a, b);
}

int64_t Levenshtein(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return EditDistance(a, b);
}

double EditSimilarityChars(std::string_view prediction, std::string_view reference) {
  return Similarity(CodePoints(TrimText(prediction)), CodePoints(TrimText(reference)));
}

double EditSimilarityTokens(std::string_view prediction, std::string_view reference) {
  return Similarity(SplitTokens(prediction), SplitTokens(reference));
}

void BleuStats::Add(const BleuStats& other) {
  for (int n = 0; n < kMaxOrder; ++n) {
    matches[n] += other.matches[n];
    totals[n] += other.totals[n];
  }
  hyp_length += other.hyp_length;
  ref_length += other.ref_length;
}

BleuStats ComputeBleuStats(const std::vector<std::string>& hypothesis,
                           const std::vector<std::string>& reference) {
  BleuStats stats;
  stats.hyp_length = static_cast<int64_t>(hypothesis.size());
  stats.ref_length = static_cast<int64_t>(reference.size());
  for (int n = 1; n <= BleuStats::kMaxOrder; ++n) {
    const NgramCounts hyp = CountNgrams(hypothesis, n);
    const NgramCounts ref = CountNgrams(reference, n);
    for (const auto& [gram, count] : hyp) {
      auto it = ref.find(gram);
      stats.totals[n - 1] += count;
      if (it != ref.end()) stats.matches[n - 1] += std::min(count, it->second);
    }
  }
  return stats;
}

double SentenceBleu(std::string_view prediction, std::string_view reference) {
  const BleuStats s = ComputeBleuStats(SplitTokens(prediction), SplitTokens(reference));
  if (s.hyp_length == 0 && s.ref_length == 0) return 1.0;
  if (s.matches[0] == 0) return 0.0;
  double log_sum = 0;
  for (int n = 0; n < BleuStats::kMaxOrder; ++n) {
    const double total = static_cast<double>(std::max<int64_t>(1, s.totals[n]));
    const double p =
        s.matches[n] > 0 ? static_cast<double>(s.matches[n]) / total : kSmoothingEpsilon / total;
    log_sum += std::log(p);
  }
  return BrevityPenalty(s.hyp_length, s.ref_length) * std::exp(log_sum / BleuStats::kMaxOrder);
}

double CorpusBleu(const BleuStats& total) {
  if (total.hyp_length == 0 && total.ref_length == 0) return 1.0;
  double log_sum = 0;
  for (int n = 0; n < BleuStats::kMaxOrder; ++n) {
    if (total.matches[n] == 0) return 0.0;
    log_sum +=
        std::log(static_cast<double>(total.matches[n]) / static_cast<double>(total.totals[n]));
  }
  return BrevityPenalty(total.hyp_length, total.ref_length) *
         std::exp(log_sum / BleuStats::kMaxOrder);
}

}  // namespace vlmd::eval
