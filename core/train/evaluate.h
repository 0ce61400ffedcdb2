// Teacher-forced evaluation as the trainer reports it (eval_loss, eval_acc; spec/swift.md §2),
// shared by Trainer::Evaluate and the evaluation service so both compute the same numbers, and
// the example sources both read from. Internal to core/ (torch).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/base/status.h"
#include "core/model/qwen2vl.h"
#include "core/train/example.h"
#include "core/train/train_step.h"

namespace vlmd {

// Supplies examples by index, building them (tokens, images) on demand. Thread-compatible.
class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual size_t size() const = 0;
  virtual StatusOr<TrainExample> Get(size_t index) const = 0;
};

// Builds examples from samples with BuildExample (ids, labels over the assistant turns, images).
class SampleSource : public ExampleSource {
 public:
  // `options` is not owned and must outlive this object.
  SampleSource(std::vector<Sample> samples, const ExampleOptions* options)
      : samples_(std::move(samples)), options_(options) {}
  size_t size() const override { return samples_.size(); }
  StatusOr<TrainExample> Get(size_t index) const override;
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
  const ExampleOptions* options_;
};

// The outcome of one teacher-forced pass.
struct TeacherForcedResult {
  double loss = 0;  // mean over batches of the batch's mean token loss, weighted by batch size
  double acc = 0;   // argmax == label over all label tokens
  int64_t samples = 0, tokens = 0, correct = 0, batches = 0;
  double seconds = 0;
};

// Runs `source` in batches of `batch_size` (in order, no dropout, no gradients) through the
// model with `adapter` (an adapter without modules = the base model). The loss is what
// transformers' evaluation loop reports: each batch's mean loss weighted by its size; acc is
// SWIFT's token accuracy. `keep_going` (optional) is asked between batches; false stops with
// CANCELLED.
StatusOr<TeacherForcedResult> EvaluateTeacherForced(const Qwen2VL& model,
                                                    const LoraAdapter& adapter,
                                                    const ExampleSource& source, int batch_size,
                                                    const std::function<bool()>& keep_going = {});

}  // namespace vlmd
