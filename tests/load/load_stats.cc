#include "tests/load/load_stats.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace vlmd::load {
namespace {

const char* CodeName(grpc::StatusCode c) {
  static const std::map<int, const char*> kNames = {{0, "OK"},
                                                    {1, "CANCELLED"},
                                                    {2, "UNKNOWN"},
                                                    {3, "INVALID_ARGUMENT"},
                                                    {4, "DEADLINE_EXCEEDED"},
                                                    {5, "NOT_FOUND"},
                                                    {6, "ALREADY_EXISTS"},
                                                    {7, "PERMISSION_DENIED"},
                                                    {8, "RESOURCE_EXHAUSTED"},
                                                    {9, "FAILED_PRECONDITION"},
                                                    {10, "ABORTED"},
                                                    {11, "OUT_OF_RANGE"},
                                                    {12, "UNIMPLEMENTED"},
                                                    {13, "INTERNAL"},
                                                    {14, "UNAVAILABLE"},
                                                    {15, "DATA_LOSS"},
                                                    {16, "UNAUTHENTICATED"}};
  auto it = kNames.find(static_cast<int>(c));
  return it == kNames.end() ? "?" : it->second;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string Quantiles(const std::vector<double>& v) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "{\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f}",
                Percentile(v, 50), Percentile(v, 90), Percentile(v, 99), Percentile(v, 100));
  return buf;
}

}  // namespace

const char* ActionName(Action a) {
  switch (a) {
    case Action::kComplete:
      return "complete";
    case Action::kCancel:
      return "cancel";
    case Action::kDeadline:
      return "deadline";
  }
  return "?";
}

bool Expected(const Outcome& o) {
  switch (o.action) {
    case Action::kComplete:
      return o.code == grpc::StatusCode::OK;
    case Action::kCancel:
      return o.code == grpc::StatusCode::CANCELLED || o.code == grpc::StatusCode::OK;
    case Action::kDeadline:
      return o.code == grpc::StatusCode::DEADLINE_EXCEEDED || o.code == grpc::StatusCode::OK;
  }
  return false;
}

int64_t ReadRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

void Stats::Add(Outcome o) {
  std::lock_guard<std::mutex> lock(mu_);
  outcomes_.push_back(std::move(o));
}

int64_t Stats::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(outcomes_.size());
}

std::vector<Outcome> Stats::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcomes_;
}

Summary Summarize(const std::vector<Outcome>& outcomes, const std::vector<RssSample>& rss,
                  double duration_s, double warmup_s, int streams) {
  Summary s;
  std::vector<double> ttft, total;
  std::map<std::string, int64_t> by_code;  // "action/CODE"
  std::map<std::string, int64_t> unexpected_messages;
  int64_t tokens = 0, ok = 0, images = 0, adapters = 0;
  for (const Outcome& o : outcomes) {
    by_code[std::string(ActionName(o.action)) + "/" + CodeName(o.code)]++;
    if (!Expected(o)) {
      ++s.unexpected;
      unexpected_messages[std::string(CodeName(o.code)) + ": " + o.message.substr(0, 120)]++;
    }
    if (o.code == grpc::StatusCode::OK) {
      ++ok;
      total.push_back(o.total_ms);
    }
    if (o.ttft_ms >= 0) ttft.push_back(o.ttft_ms);
    tokens += o.tokens;
    images += o.image;
    adapters += o.adapter;
  }
  // RSS growth: mean of the samples in the window after warm-up against the mean of the last
  // window of the run (a window is 5% of the run, at least 5 samples): single samples jump with
  // whatever images happen to be queued at that moment.
  const double window = std::max(5.0, duration_s / 20);
  auto mean_between = [&](double from, double to) {
    int64_t sum = 0, n = 0;
    for (const RssSample& r : rss) {
      if (r.t_s >= from && r.t_s <= to) sum += r.rss_kib, ++n;
    }
    return n > 0 ? sum / n : int64_t{0};
  };
  const int64_t base = mean_between(warmup_s, warmup_s + window);
  const int64_t end = mean_between(duration_s - window, duration_s + 1);
  if (base > 0 && end > 0) s.rss_growth_kib = end - base;
  for (size_t i = 1; i < rss.size(); ++i) {  // stalls: samples with no progress
    int64_t span = 0;
    for (size_t j = i; j < rss.size() && rss[j].completed == rss[i - 1].completed; ++j) {
      span = static_cast<int64_t>(rss[j].t_s - rss[i - 1].t_s);
    }
    s.max_stall_s = std::max(s.max_stall_s, span);
  }
  std::ostringstream j;
  j << "{\n  \"streams\": " << streams << ",\n  \"duration_s\": " << duration_s
    << ",\n  \"requests\": " << outcomes.size() << ",\n  \"ok\": " << ok
    << ",\n  \"with_image\": " << images << ",\n  \"with_adapter\": " << adapters
    << ",\n  \"requests_per_s\": " << outcomes.size() / duration_s
    << ",\n  \"tokens_per_s\": " << tokens / duration_s << ",\n  \"ttft_ms\": " << Quantiles(ttft)
    << ",\n  \"total_ms_ok\": " << Quantiles(total) << ",\n  \"unexpected\": " << s.unexpected
    << ",\n  \"max_stall_s\": " << s.max_stall_s << ",\n  \"rss_base_kib\": " << base
    << ",\n  \"rss_end_kib\": " << end << ",\n  \"rss_growth_kib\": " << s.rss_growth_kib
    << ",\n  \"by_action_and_code\": {";
  const char* sep = "";
  for (const auto& [k, v] : by_code) {
    j << sep << "\n    \"" << k << "\": " << v;
    sep = ",";
  }
  j << "\n  },\n  \"rss\": [";
  sep = "";
  for (const RssSample& r : rss) {
    j << sep << "\n    {\"t_s\": " << r.t_s << ", \"rss_kib\": " << r.rss_kib
      << ", \"completed\": " << r.completed << "}";
    sep = ",";
  }
  j << "\n  ]\n}\n";
  s.json = j.str();
  std::ostringstream t;
  t << streams << " streams for " << duration_s << " s: " << outcomes.size() << " requests (" << ok
    << " OK, " << images << " with an image, " << adapters << " through an adapter), "
    << outcomes.size() / duration_s << " req/s, " << tokens / duration_s << " tokens/s\n"
    << "TTFT ms " << Quantiles(ttft) << "\ntotal ms (OK) " << Quantiles(total) << "\n";
  for (const auto& [k, v] : by_code) t << "  " << k << ": " << v << "\n";
  t << "unexpected: " << s.unexpected << "\n";
  for (const auto& [m, n] : unexpected_messages) t << "  " << n << " x " << m << "\n";
  if (!rss.empty()) {
    t << "server RSS KiB: first " << rss.front().rss_kib << ", mean after warm-up " << base
      << ", mean at the end " << end << " (growth " << s.rss_growth_kib << " KiB); longest stall "
      << s.max_stall_s << " s\n";
  }
  s.text = t.str();
  return s;
}

}  // namespace vlmd::load
