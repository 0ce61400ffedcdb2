// What the job manager takes from one line of a worker's stdout, and how it changes the job's
// status. The line format is the training progress protocol of core/train (ProgressSink /
// ParseProgressLine); progress_bridge.cc is the one place that maps it to WorkerReport.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/api/jobs.h"
#include "core/jobs/job_store.h"

namespace vlmd::jobs {

// One parsed progress line.
struct WorkerReport {
  enum class Kind { kTrain, kEval, kCheckpoint, kState, kLog };
  Kind kind = Kind::kLog;
  int64_t step = 0, max_steps = 0;
  double epoch = 0;
  std::map<std::string, double> metrics;  // train: loss, acc, ...; eval: eval_loss, ...
  double samples_per_second = 0, elapsed_s = 0, remaining_s = 0;
  std::string path;     // checkpoint directory
  bool best = false;    // checkpoint is the best so far
  std::string state;    // kState: the worker's state name (RUNNING, FAILED, ...)
  std::string message;  // kState / kLog text
  bool raw = false;     // not a protocol line: stray stdout output, kept as kLog text
};

// Parses one stdout line of a worker. Lines that are not protocol lines come back as kLog
// with the raw text, so nothing a worker prints is lost. Thread-safe.
WorkerReport ParseWorkerLine(const std::string& line);

// Applies `report` to `status` and returns the event to record. Checkpoints whose directory
// is gone (rotated away by the worker) are dropped. Pure apart from that directory check.
NewEvent ApplyWorkerReport(const WorkerReport& report, api::JobStatus* status);

// The newest checkpoint-N/ under `job_dir` that holds trainer_state.json (written last, so
// its presence marks a complete checkpoint); "" when none.
std::string LastCompleteCheckpoint(const std::string& job_dir);
// The state of the last `state` line in <job_dir>/progress.jsonl (the worker's own copy of
// its progress lines), "" when there is none. Tells what became of a worker that ended while
// no server was reading its stdout.
std::string LastLoggedWorkerState(const std::string& job_dir);
// What `checkpoint_dir`/trainer_state.json records (zero/empty when unreadable).
struct TrainerStateInfo {
  int64_t global_step = 0, max_steps = 0;
  std::string best_checkpoint;  // best_model_checkpoint
};
TrainerStateInfo ReadTrainerState(const std::string& checkpoint_dir);

}  // namespace vlmd::jobs
