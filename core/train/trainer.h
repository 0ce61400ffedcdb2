// The LoRA fine-tuning loop: trainable adapter with PEFT's init and math, AdamW, the HF
// schedule, gradient accumulation and clipping, evaluation, checkpoints (PEFT adapter +
// optimizer/scheduler/RNG/trainer state) with rotation that keeps the best, exact resume.
// Everything it reports goes through one TrainingSink. Internal to core/ (torch).
#pragma once

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/engine/model_bundle.h"
#include "core/train/distributed.h"
#include "core/train/evaluate.h"
#include "core/train/job_spec.h"
#include "core/train/optimizer.h"
#include "core/train/sink.h"
#include "core/train/train_step.h"

namespace vlmd {

// More evaluation at each eval step with the adapter being trained (generation metrics; see
// core/eval/generation_eval.h). Called from the training thread.
class EvalExtension {
 public:
  virtual ~EvalExtension() = default;
  // Adds metrics by name without the "eval_" prefix (e.g. "exact_match") for the evaluation at
  // optimizer step `step`; `final` is true at the last step. An error fails the job.
  virtual Status Evaluate(const LoraAdapter& adapter, int64_t step, bool final,
                          std::map<std::string, double>* metrics) = 0;
};

// PEFT target list for a spec's target_modules ("DEFAULT", "ALL" or module names).
std::vector<std::string> ExpandTargetModules(const std::vector<std::string>& targets);

// A trainable adapter (float32, requires_grad) for `spec` on `model`: PEFT's init
// (A ~ kaiming-uniform(a=sqrt(5)), B = 0) from `seed`, or the weights of spec.init_adapter.
StatusOr<std::shared_ptr<LoraAdapter>> CreateTrainableAdapter(const JobSpec& spec,
                                                              const Qwen2VL& model, uint64_t seed);

// Progress counters that a checkpoint stores and a resume restores.
struct TrainProgress {
  int64_t global_step = 0;
  int64_t epoch = 0;           // index of the epoch in progress
  int64_t batch_in_epoch = 0;  // micro-batches consumed in that epoch
  double best_metric = 0;
  bool has_best = false;
  std::string best_checkpoint;
  std::vector<std::string> checkpoints;  // oldest first
};

class Trainer {
 public:
  // `eval` may be null (no evaluation). Neither source nor sink is owned.
  Trainer(JobSpec spec, std::shared_ptr<const ModelBundle> bundle, const ExampleSource* train,
          const ExampleSource* eval, TrainingSink* sink);
  // Adds `extension` (not owned; may be null) to every evaluation; its metrics go into
  // EvalLog.extra and can pick the best checkpoint. Call before Run.
  void set_eval_extension(EvalExtension* extension) { extension_ = extension; }
  // Trains data-parallel over `collective`'s ranks (not owned; may be null = one process).
  // Every rank reads its slice of each global batch (batch_size x world_size samples); the
  // token count, the gradients and the logged sums are summed over the ranks, so the update
  // equals one process's with the whole global batch. Rank 0 alone evaluates and writes
  // checkpoints; the other ranks' sinks should discard. Call before Init.
  void set_collective(Collective* collective) { collective_ = collective; }
  // Creates the adapter and optimizer, or restores them from spec.resume_from_checkpoint.
  Status Init();
  // Trains until max steps or until `stop` becomes true (then returns CANCELLED after the
  // current step). Checkpoints are kept either way.
  Status Run(const std::atomic<bool>& stop);
  // Saves a checkpoint at the current step unless one exists (after a cancellation).
  Status SaveCheckpointNow();
  int64_t max_steps() const { return max_steps_; }
  const TrainProgress& progress() const { return progress_; }
  const LoraAdapter& adapter() const { return *adapter_; }

 private:
  std::vector<size_t> EpochOrder(int64_t epoch) const;
  // Builds the next accumulation group of micro-batches (stops at the epoch's end).
  StatusOr<std::vector<std::vector<TrainExample>>> NextGroup();
  Status OptimizerStep(MicroBatchResult* total, double* grad_norm, double* lr);
  // Whether every rank stops now: true if `stop` is set on any of them.
  bool AgreeToStop(const std::atomic<bool>& stop);
  // Sums the gradients and this group's counts over the ranks (data-parallel only).
  void ReduceAcrossRanks(MicroBatchResult* group);
  bool IsRankZero() const { return collective_ == nullptr || collective_->rank() == 0; }
  int WorldSize() const { return collective_ == nullptr ? 1 : collective_->world_size(); }
  Status Evaluate(std::map<std::string, double>* metrics);
  Status SaveCheckpoint(const std::map<std::string, double>& eval_metrics);
  Status Restore(const std::string& checkpoint_dir);
  void Log(const MicroBatchResult& window, int64_t window_steps, double grad_norm, double lr,
           double window_seconds);

  JobSpec spec_;
  std::shared_ptr<const ModelBundle> bundle_;
  const ExampleSource* train_;
  const ExampleSource* eval_;
  TrainingSink* sink_;
  EvalExtension* extension_ = nullptr;
  Collective* collective_ = nullptr;
  std::shared_ptr<LoraAdapter> adapter_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<AdamW> optimizer_;
  StepOptions step_options_;
  int accumulation_ = 1;
  int64_t batches_per_epoch_ = 0, steps_per_epoch_ = 0, max_steps_ = 0, warmup_steps_ = 0;
  TrainProgress progress_;
  double start_seconds_ = 0;
};

}  // namespace vlmd
