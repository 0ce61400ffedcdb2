// The one interface everything a training job reports goes through (DESIGN.md): the trainer
// calls a TrainingSink; implementations write logging.jsonl (logging_jsonl_sink.h), TensorBoard
// event files (tensorboard.h), plots (plot.h) and progress lines for the server (progress.h).
// Plain structs, no torch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vlmd {

// One training log (every logging_steps optimizer steps). Averages are over the window since
// the previous log.
struct TrainLog {
  int64_t step = 0;       // optimizer steps done (global_step)
  int64_t max_steps = 0;  // optimizer steps the job will run
  double epoch = 0;       // fractional epoch
  double loss = 0;        // mean cross-entropy per label token
  double acc = 0;         // teacher-forced token accuracy (spec/swift.md §2)
  double grad_norm = 0;   // before clipping
  double learning_rate = 0;
  double memory_gib = 0;   // peak device memory
  double train_speed = 0;  // optimizer steps per second (SWIFT's iter/s)
  double samples_per_second = 0;
  double elapsed_s = 0;    // since training started
  double remaining_s = 0;  // estimate
};

// One evaluation on the validation set.
struct EvalLog {
  int64_t step = 0;
  int64_t max_steps = 0;  // 0 = unknown (sinks then use the last TrainLog's)
  double epoch = 0;
  double eval_loss = 0;
  double eval_acc = 0;
  double eval_runtime = 0;  // seconds
  double eval_samples_per_second = 0;
  double eval_steps_per_second = 0;
  // Further metrics by name without the "eval_" prefix (e.g. "exact_match"); sinks write them
  // as eval_<name> (logging.jsonl, progress) and eval/<name> (TensorBoard).
  std::map<std::string, double> extra;
};

// A checkpoint directory that was completely written.
struct CheckpointEvent {
  int64_t step = 0;
  std::string path;                       // the checkpoint-N directory
  bool best = false;                      // best so far by metric_for_best_model
  std::map<std::string, double> metrics;  // the eval metrics it was judged by (may be empty)
};

// The end of a successful run (SWIFT's last logging.jsonl line).
struct TrainSummary {
  std::string best_model_checkpoint;  // "" when no evaluation ran
  double best_metric = 0;
  std::string last_model_checkpoint;
  double train_time = 0;  // seconds
  double memory = 0;      // peak device memory, GiB
};

// Receives a job's reports. Every method has an empty default, so a sink overrides what it
// needs. Implementations in core/train are thread-safe (a mutex per sink); a sink never throws
// and never fails the job: write errors are logged once and the sink goes on.
class TrainingSink {
 public:
  virtual ~TrainingSink() = default;
  virtual void OnTrainLog(const TrainLog& log) {}
  virtual void OnEvalLog(const EvalLog& log) {}
  virtual void OnCheckpoint(const CheckpointEvent& event) {}
  // Job state changes, e.g. ("RUNNING", "") or ("FAILED", "out of memory at step 12").
  virtual void OnState(const std::string& state, const std::string& message) {}
  // A free-form line for the job's log (data-set report, resume notice, warnings).
  virtual void OnLogLine(const std::string& line) {}
  virtual void OnFinish(const TrainSummary& summary) {}
};

// Forwards every call to several sinks in the order they were added. Add sinks before the
// first report; reporting is then as thread-safe as the sinks themselves.
class FanoutSink : public TrainingSink {
 public:
  // `sink` is not owned and must outlive this object.
  void Add(TrainingSink* sink) { sinks_.push_back(sink); }
  // `sink` is owned by this object.
  void Add(std::unique_ptr<TrainingSink> sink);

  void OnTrainLog(const TrainLog& log) override;
  void OnEvalLog(const EvalLog& log) override;
  void OnCheckpoint(const CheckpointEvent& event) override;
  void OnState(const std::string& state, const std::string& message) override;
  void OnLogLine(const std::string& line) override;
  void OnFinish(const TrainSummary& summary) override;

 private:
  std::vector<TrainingSink*> sinks_;
  std::vector<std::unique_ptr<TrainingSink>> owned_;
};

}  // namespace vlmd
