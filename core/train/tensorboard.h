// TensorBoard scalars: a sink that writes runs/events.out.tfevents.<time>.<host>.<pid>.0 the
// way transformers' TensorBoardCallback (through torch's SummaryWriter) does, and a reader that
// parses such a file back (every CRC checked) for tests and tools.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/sink.h"

namespace vlmd {

// Writes one Event record per scalar, flushed after each. Tags follow transformers'
// rewrite_logs: train/loss, train/acc, train/learning_rate, train/grad_norm, train/train_speed;
// eval/loss, eval/acc, eval/runtime, eval/samples_per_second, eval/steps_per_second and
// eval/<name> for EvalLog::extra. Values are stored as float (simple_value). Thread-safe.
class TensorBoardSink : public TrainingSink {
 public:
  // Creates `log_dir` (e.g. <job>/runs) if needed and a new event file in it, starting with
  // the file_version record. INTERNAL naming the path when it cannot.
  static StatusOr<std::unique_ptr<TensorBoardSink>> Create(const std::string& log_dir);
  ~TensorBoardSink() override;

  // The event file's path.
  const std::string& path() const { return path_; }
  // Appends one scalar with the current wall time.
  void AddScalar(const std::string& tag, int64_t step, double value);

  void OnTrainLog(const TrainLog& log) override;
  void OnEvalLog(const EvalLog& log) override;

 private:
  TensorBoardSink(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  // Writes a framed record; the caller holds mu_.
  void WriteRecord(const std::string& event);

  std::mutex mu_;
  std::FILE* file_;
  std::string path_;
  bool write_failed_ = false;
};

// The file name torch's SummaryWriter uses: events.out.tfevents.<unix seconds>.<host>.<pid>.0
std::string TensorBoardFileName();

// One scalar read back from an event file.
struct ScalarPoint {
  int64_t step = 0;
  double value = 0;  // the stored float, widened
  double wall_time = 0;
};

// Parses an event file: checks every record's CRCs and that the first event is file_version
// "brain.Event:2", then collects summary values with simple_value by tag in file order.
// DATA_LOSS naming the file and byte offset for a corrupt record; NOT_FOUND for a missing file.
// `allow_partial_tail` ignores a last record cut short by a writer that died (see ReadRecords).
StatusOr<std::map<std::string, std::vector<ScalarPoint>>> ReadTensorBoardScalars(
    const std::string& path, bool allow_partial_tail = false);

}  // namespace vlmd
