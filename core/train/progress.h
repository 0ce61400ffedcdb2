// The progress protocol between a training worker and the server: one JSON object per line on
// the worker's stdout (and in its progress.jsonl), written by ProgressSink and read back by
// ParseProgressLine. Lines by "type":
//   train       step, max_steps, epoch, loss, acc, grad_norm, learning_rate, memory_gib,
//               train_speed, samples_per_second, elapsed_s, remaining_s   (TrainLog's fields)
//   eval        step, max_steps, epoch, eval_loss, eval_acc, eval_runtime,
//               eval_samples_per_second, eval_steps_per_second, eval_<extra metric>...
//   checkpoint  step, path, best, metrics {name: value}
//   state       state, message
//   log         line
//   finish      best_model_checkpoint, best_metric, last_model_checkpoint, train_time, memory
// Non-finite numbers are written as null and read back as NaN.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "core/base/status.h"
#include "core/train/sink.h"

namespace vlmd {

// One progress line, parsed. Only the member for `type` is meaningful.
struct ProgressEvent {
  enum class Type { kTrain, kEval, kCheckpoint, kState, kLog, kFinish };
  Type type = Type::kLog;
  TrainLog train;              // kTrain
  EvalLog eval;                // kEval
  CheckpointEvent checkpoint;  // kCheckpoint
  std::string state;           // kState
  std::string message;         // kState: its message; kLog: the line
  TrainSummary summary;        // kFinish
};

// The protocol's name of a type ("train", "eval", ...).
const char* ProgressTypeName(ProgressEvent::Type type);
// The JSON line for `event`, without the trailing newline. Never throws.
std::string FormatProgressLine(const ProgressEvent& event);
// Parses one line. INVALID_ARGUMENT for anything that is not a protocol line (not JSON, no or
// unknown "type", a field of the wrong JSON type), so callers can keep such lines as raw text.
// Thread-safe.
StatusOr<ProgressEvent> ParseProgressLine(std::string_view line);

// Writes every event as one line to `out` (e.g. stdout), flushing after each. Thread-safe:
// lines from different threads never interleave.
class ProgressSink : public TrainingSink {
 public:
  // `out` is not owned and must outlive the sink.
  explicit ProgressSink(std::FILE* out) : out_(out) {}

  void OnTrainLog(const TrainLog& log) override;
  void OnEvalLog(const EvalLog& log) override;
  void OnCheckpoint(const CheckpointEvent& event) override;
  void OnState(const std::string& state, const std::string& message) override;
  void OnLogLine(const std::string& line) override;
  void OnFinish(const TrainSummary& summary) override;

 private:
  void Write(const ProgressEvent& event);

  std::mutex mu_;
  std::FILE* out_;
  bool write_failed_ = false;
};

}  // namespace vlmd
