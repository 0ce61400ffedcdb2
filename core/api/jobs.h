// The fine-tuning job service as server/ sees it (torch-free facade): LoRA SFT jobs validated,
// queued in SQLite under the state directory, scheduled onto GPUs (or CPU slots), run as
// `vlmd train --job DIR` worker processes, watched, cancelled, recovered after restarts; and
// MergeLora. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/job_spec.h"

namespace vlmd::api {

class InferenceService;

enum class JobState { kValidating, kQueued, kRunning, kSucceeded, kFailed, kCancelled };
const char* JobStateName(JobState state);  // "VALIDATING", ...
bool IsTerminal(JobState state);

struct CheckpointInfo {
  int64_t step = 0;
  std::string path;
  std::map<std::string, double> metrics;  // eval metrics at that step (eval_loss, ...)
  bool best = false;
};

// Everything GetJobStatus reports.
struct JobStatus {
  std::string id;          // e.g. "sft-20261125-0001"
  std::string name;        // spec.name (the adapter name once served)
  JobState state = JobState::kValidating;
  std::string reason;      // on FAILED/CANCELLED: what happened and what to change
  int64_t step = 0, max_steps = 0;
  double epoch = 0;
  std::map<std::string, double> train_metrics;  // loss, acc, learning_rate, grad_norm
  std::map<std::string, double> eval_metrics;   // eval_loss, eval_acc, ...
  double samples_per_second = 0;
  double elapsed_s = 0, remaining_s = 0;
  std::vector<int> gpus;   // devices held (empty on CPU)
  std::vector<CheckpointInfo> checkpoints;
  std::string best_checkpoint;
  std::string job_dir;
  int attempts = 0;        // worker starts (resumes after a crash count too)
  int64_t created_unix = 0, started_unix = 0, finished_unix = 0;
  int64_t train_samples = 0, val_samples = 0, skipped_samples = 0;
  std::string validation_report;  // human-readable summary from VALIDATING
  JobSpec spec;
};

// One entry of a job's event stream (WatchJob).
struct JobEvent {
  enum class Type { kState, kProgress, kTrainMetrics, kEvalMetrics, kCheckpoint, kLog };
  int64_t seq = 0;         // increasing per job; resume a watch from a seq
  int64_t time_unix_ms = 0;
  Type type = Type::kLog;
  std::string message;     // log line or state reason
  JobStatus status;        // snapshot after the event
};

struct JobServiceConfig {
  std::string state_dir;                 // jobs.db and jobs/<id>/ live here
  std::vector<int> training_gpus;        // device ids lent to jobs (the rest serve inference)
  int cpu_slots = 1;                     // concurrent CPU jobs when a job asks for 0 GPUs
  std::string worker_binary;             // the vlmd executable (default: /proc/self/exe)
  std::string data_root;                 // where latex-ocr-print/... data sets live
  std::vector<std::string> allowed_roots;  // data, images, models and outputs must be under these
  int max_attempts = 3;                  // worker starts per job before FAILED
  std::string tokenizer_fallback;
};

struct MergeRequest {
  std::string model;          // base model directory
  std::string adapter_dir;    // a PEFT adapter directory, or:
  std::string job_id;         // a job, with
  std::string checkpoint = "best";  // "best", "last" or a step number
  std::string output_dir;     // must be under the allowed roots
  std::string dtype = "auto";       // auto = the base checkpoint's dtype
  std::string register_as;    // if set, serve the merged model under this name
};

struct MergeResult {
  std::string output_dir;
  int64_t tensors = 0, merged_modules = 0, bytes = 0;
  double seconds = 0;
};

// Counts for metrics.
struct JobStats {
  std::map<std::string, int64_t> jobs_by_state;
  int64_t queue_length = 0;
  int64_t training_gpus_total = 0, training_gpus_busy = 0;
  std::vector<JobStatus> running;
};

class JobService {
 public:
  // Opens (or creates) the database, recovers jobs left by a previous run (queued stay queued;
  // running ones whose worker is gone resume from their last checkpoint or fail), starts the
  // scheduler. `inference` (may be null) gets each succeeded job's best adapter, under the
  // job's name: at once when a job succeeds, and at start for jobs that succeeded before.
  static StatusOr<std::unique_ptr<JobService>> Create(const JobServiceConfig& config,
                                                      InferenceService* inference);
  virtual ~JobService() = default;

  // Checks the spec (INVALID_ARGUMENT naming the field; PERMISSION_DENIED for paths outside
  // the roots; NOT_FOUND for a missing model or data set) and creates the job in VALIDATING;
  // validation of every data line and image header continues in the background.
  virtual StatusOr<JobStatus> StartSftJob(JobSpec spec) = 0;
  virtual StatusOr<JobStatus> GetJob(const std::string& id) const = 0;
  virtual std::vector<JobStatus> ListJobs(std::optional<JobState> state) const = 0;
  // Stops the job (its worker within one step); keeps its checkpoints. FAILED_PRECONDITION if
  // already finished.
  virtual StatusOr<JobStatus> CancelJob(const std::string& id) = 0;
  // Calls `on_event` for every event after `from_seq` (history first, then live) until the
  // job ends or the returned handle is destroyed. `on_event` returns false to stop. `on_end`
  // (optional) is called once after the last event when the watch ended because the job is
  // finished and every event was delivered (also when from_seq was already past the end);
  // not when the watch was stopped. Both run on the watch's own thread.
  class Watch {
   public:
    virtual ~Watch() = default;
  };
  virtual StatusOr<std::unique_ptr<Watch>> WatchJob(
      const std::string& id, int64_t from_seq, std::function<bool(const JobEvent&)> on_event,
      std::function<void()> on_end = nullptr) = 0;
  virtual StatusOr<MergeResult> MergeLora(const MergeRequest& request) = 0;
  virtual JobStats Stats() const = 0;
  // Stops scheduling; running workers are left running (they are recovered on restart) unless
  // `stop_workers` (then they get SIGTERM and keep their checkpoints).
  virtual void Shutdown(bool stop_workers) = 0;
};

}  // namespace vlmd::api
