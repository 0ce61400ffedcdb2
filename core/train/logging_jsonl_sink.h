// logging.jsonl as SWIFT writes it (spec/swift.md §3; swift/trainers/callback.py): one JSON
// object per line with SWIFT's keys in SWIFT's order, appended and flushed per line so that a
// crash loses at most the line being written.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/sink.h"

namespace vlmd {

// SWIFT's format_time: "1d 2h 3m 4s", "2h 3m 4s", "3m 4s" or "4s" (whole seconds, truncated).
std::string FormatDuration(double seconds);
// SWIFT's percentage: step/max_steps as "12.34%" ("0.00%" when max_steps is 0).
std::string FormatPercentage(int64_t step, int64_t max_steps);

// The training line: loss, acc, grad_norm, learning_rate, memory(GiB), train_speed(iter/s),
// epoch, global_step/max_steps, percentage, elapsed_time, remaining_time. Values are rounded
// as SWIFT/transformers do (loss 4 decimals, memory 2, speed 6, the rest 8).
std::string LoggingJsonlTrainLine(const TrainLog& log);
// The eval line: eval_loss, eval_acc, eval_runtime, eval_samples_per_second,
// eval_steps_per_second, eval_<extra>..., epoch, global_step/max_steps, percentage,
// elapsed_time, remaining_time (SWIFT adds the progress keys to eval lines too).
std::string LoggingJsonlEvalLine(const EvalLog& log, double elapsed_s);

// Appends SWIFT-format lines to a logging.jsonl. Thread-safe.
class LoggingJsonlSink : public TrainingSink {
 public:
  // Opens (creating or appending to) `path`. INTERNAL naming the path when it cannot.
  static StatusOr<std::unique_ptr<LoggingJsonlSink>> Open(const std::string& path);
  ~LoggingJsonlSink() override;

  void OnTrainLog(const TrainLog& log) override;
  // Elapsed time of an eval line: the last TrainLog's elapsed_s plus the time since it came.
  void OnEvalLog(const EvalLog& log) override;
  // The summary line: best_model_checkpoint, best_metric, last_model_checkpoint, global_step,
  // log_history (the lines this sink wrote), memory (GiB), train_time (seconds).
  void OnFinish(const TrainSummary& summary) override;

 private:
  LoggingJsonlSink(std::FILE* file, std::string path);
  void AppendLine(const std::string& line);
  double ElapsedSeconds() const;

  std::mutex mu_;
  std::FILE* file_;
  std::string path_;
  bool write_failed_ = false;
  std::vector<std::string> history_;
  int64_t last_step_ = 0, max_steps_ = 0;
  double last_elapsed_s_ = 0;
  std::chrono::steady_clock::time_point last_log_time_;
};

}  // namespace vlmd
