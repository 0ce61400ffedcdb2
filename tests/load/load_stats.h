// Counters and percentiles of a load run, and the server's RSS sampled from /proc. Thread-safe
// where noted.
#pragma once

#include <grpcpp/support/status.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vlmd::load {

// What a request was meant to do; decides which status codes are expected for it.
enum class Action { kComplete, kCancel, kDeadline };
const char* ActionName(Action a);

// One finished request.
struct Outcome {
  Action action = Action::kComplete;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  double ttft_ms = -1;  // first delta with tokens; -1 if none arrived
  double total_ms = 0;
  int tokens = 0;
  bool image = false, adapter = false;
};

// True when `o.code` is what its action allows (OK; CANCELLED after a cancel; OK or
// DEADLINE_EXCEEDED with a short deadline).
bool Expected(const Outcome& o);

// One RSS reading of the server.
struct RssSample {
  double t_s = 0;
  int64_t rss_kib = 0;
  int64_t completed = 0;  // requests finished so far (any outcome)
};

// VmRSS of `pid` in KiB, or -1.
int64_t ReadRssKiB(pid_t pid);

// Collects outcomes from many threads (Add is thread-safe) and summarizes them.
class Stats {
 public:
  void Add(Outcome o);
  int64_t completed() const;
  // Copies of everything added so far.
  std::vector<Outcome> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::vector<Outcome> outcomes_;
};

// The run's summary as JSON text and as a human-readable report.
struct Summary {
  std::string json;
  std::string text;
  int64_t unexpected = 0;
  int64_t rss_growth_kib = 0;  // last sample - the sample after warm-up
  int64_t max_stall_s = 0;     // longest span of seconds in which nothing finished
};
Summary Summarize(const std::vector<Outcome>& outcomes, const std::vector<RssSample>& rss,
                  double duration_s, double warmup_s, int streams);

}  // namespace vlmd::load
