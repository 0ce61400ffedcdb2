#include "core/train/logging_jsonl_sink.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/logging.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using ordered_json = nlohmann::ordered_json;

// Python's round(x, digits) for the magnitudes logged here (half away from zero; non-finite
// values pass through and are written as null, since JSON has no NaN).
double Round(double x, int digits) {
  if (!std::isfinite(x)) return x;
  const double scale = std::pow(10.0, digits);
  const double rounded = std::round(x * scale) / scale;
  return std::isfinite(rounded) ? rounded : x;
}

// The keys SWIFT's add_train_message appends to every log line.
void AddProgress(int64_t step, int64_t max_steps, double elapsed_s, double remaining_s,
                 ordered_json* j) {
  (*j)["global_step/max_steps"] = absl::StrCat(step, "/", max_steps);
  (*j)["percentage"] = FormatPercentage(step, max_steps);
  (*j)["elapsed_time"] = FormatDuration(elapsed_s);
  // SWIFT leaves remaining_time out until some progress was made.
  if (max_steps > 0 && step > 0) (*j)["remaining_time"] = FormatDuration(remaining_s);
}

// Never throws: invalid UTF-8 in a string (a path) is replaced with U+FFFD.
std::string Dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

std::string FormatDuration(double seconds) {
  const int64_t total = seconds > 0 && std::isfinite(seconds) ? static_cast<int64_t>(seconds) : 0;
  const int64_t days = total / 86400, hours = total % 86400 / 3600;
  const int64_t minutes = total % 3600 / 60, secs = total % 60;
  if (days > 0) return absl::StrCat(days, "d ", hours, "h ", minutes, "m ", secs, "s");
  if (hours > 0) return absl::StrCat(hours, "h ", minutes, "m ", secs, "s");
  if (minutes > 0) return absl::StrCat(minutes, "m ", secs, "s");
  return absl::StrCat(secs, "s");
}

std::string FormatPercentage(int64_t step, int64_t max_steps) {
  const double fraction = max_steps > 0 ? static_cast<double>(step) / max_steps : 0.0;
  return absl::StrFormat("%.2f%%", fraction * 100.0);
}

std::string LoggingJsonlTrainLine(const TrainLog& log) {
  ordered_json j;
  j["loss"] = Round(log.loss, 4);
  j["acc"] = Round(log.acc, 8);
  j["grad_norm"] = Round(log.grad_norm, 8);
  j["learning_rate"] = Round(log.learning_rate, 8);
  j["memory(GiB)"] = Round(log.memory_gib, 2);
  j["train_speed(iter/s)"] = Round(log.train_speed, 6);
  j["epoch"] = Round(log.epoch, 8);
  AddProgress(log.step, log.max_steps, log.elapsed_s, log.remaining_s, &j);
  return Dump(j);
}

std::string LoggingJsonlEvalLine(const EvalLog& log, double elapsed_s) {
  ordered_json j;
  j["eval_loss"] = Round(log.eval_loss, 8);
  j["eval_acc"] = Round(log.eval_acc, 8);
  j["eval_runtime"] = Round(log.eval_runtime, 8);
  j["eval_samples_per_second"] = Round(log.eval_samples_per_second, 8);
  j["eval_steps_per_second"] = Round(log.eval_steps_per_second, 8);
  for (const auto& [name, value] : log.extra) j["eval_" + name] = Round(value, 8);
  j["epoch"] = Round(log.epoch, 8);
  // SWIFT's estimate: elapsed / fraction done - elapsed.
  const double fraction = log.max_steps > 0 ? static_cast<double>(log.step) / log.max_steps : 0;
  const double remaining = fraction > 0 ? elapsed_s / fraction - elapsed_s : 0;
  AddProgress(log.step, log.max_steps, elapsed_s, remaining, &j);
  return Dump(j);
}

StatusOr<std::unique_ptr<LoggingJsonlSink>> LoggingJsonlSink::Open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "ab");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<LoggingJsonlSink>(new LoggingJsonlSink(file, path));
}

LoggingJsonlSink::LoggingJsonlSink(std::FILE* file, std::string path)
    : file_(file), path_(std::move(path)), last_log_time_(std::chrono::steady_clock::now()) {}

LoggingJsonlSink::~LoggingJsonlSink() { std::fclose(file_); }

void LoggingJsonlSink::AppendLine(const std::string& line) {
  const bool ok = std::fputs(line.c_str(), file_) >= 0 && std::fputc('\n', file_) != EOF &&
                  std::fflush(file_) == 0;
  if (!ok && !write_failed_) {
    write_failed_ = true;
    VLMD_LOG(Warning) << "cannot append to " << path_ << ": " << std::strerror(errno);
  }
}

double LoggingJsonlSink::ElapsedSeconds() const {
  const std::chrono::duration<double> since = std::chrono::steady_clock::now() - last_log_time_;
  return last_elapsed_s_ + since.count();
}

void LoggingJsonlSink::OnTrainLog(const TrainLog& log) {
  std::lock_guard<std::mutex> lock(mu_);
  last_step_ = log.step;
  max_steps_ = log.max_steps;
  last_elapsed_s_ = log.elapsed_s;
  last_log_time_ = std::chrono::steady_clock::now();
  history_.push_back(LoggingJsonlTrainLine(log));
  AppendLine(history_.back());
}

void LoggingJsonlSink::OnEvalLog(const EvalLog& log) {
  std::lock_guard<std::mutex> lock(mu_);
  EvalLog copy = log;
  if (copy.max_steps == 0) copy.max_steps = max_steps_;
  last_step_ = log.step;
  history_.push_back(LoggingJsonlEvalLine(copy, ElapsedSeconds()));
  AppendLine(history_.back());
}

void LoggingJsonlSink::OnFinish(const TrainSummary& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  ordered_json j;
  j["last_model_checkpoint"] = summary.last_model_checkpoint;
  j["best_model_checkpoint"] = summary.best_model_checkpoint;
  j["best_metric"] = Round(summary.best_metric, 8);
  j["global_step"] = last_step_;
  ordered_json history = ordered_json::array();
  for (const std::string& line : history_) history.push_back(ordered_json::parse(line));
  j["log_history"] = std::move(history);
  j["memory(GiB)"] = Round(summary.memory, 2);
  j["train_time"] = Round(summary.train_time, 8);
  AppendLine(Dump(j));
}

}  // namespace vlmd
