#include "core/train/evaluate.h"

#include <algorithm>
#include <chrono>

namespace vlmd {

StatusOr<TrainExample> SampleSource::Get(size_t index) const {
  ASSIGN_OR_RETURN(TokenizedExample ex, BuildExample(samples_[index], *options_));
  TrainExample out;
  out.ids = std::move(ex.ids);
  out.labels = std::move(ex.labels);
  out.images = ToImageBatch(ex.images);
  return out;
}

StatusOr<TeacherForcedResult> EvaluateTeacherForced(const Qwen2VL& model,
                                                    const LoraAdapter& adapter,
                                                    const ExampleSource& source, int batch_size,
                                                    const std::function<bool()>& keep_going) {
  const auto start = std::chrono::steady_clock::now();
  const size_t step = static_cast<size_t>(std::max(1, batch_size));
  StepOptions options;
  options.training = false;
  TeacherForcedResult out;
  double weighted_loss = 0;
  for (size_t begin = 0; begin < source.size(); begin += step) {
    if (keep_going && !keep_going()) return absl::CancelledError("evaluation cancelled");
    std::vector<TrainExample> batch;
    for (size_t i = begin; i < std::min(source.size(), begin + step); ++i) {
      ASSIGN_OR_RETURN(TrainExample ex, source.Get(i));
      batch.push_back(std::move(ex));
    }
    std::vector<const TrainExample*> ptrs;
    for (const TrainExample& ex : batch) ptrs.push_back(&ex);
    MicroBatchResult r = ForwardBackward(model, adapter, ptrs, options);
    // As transformers' evaluation loop: each batch's mean loss, weighted by its size.
    if (r.tokens > 0) weighted_loss += r.loss_sum / r.tokens * static_cast<double>(batch.size());
    out.samples += static_cast<int64_t>(batch.size());
    out.tokens += r.tokens;
    out.correct += r.correct;
    ++out.batches;
  }
  out.loss = out.samples > 0 ? weighted_loss / static_cast<double>(out.samples) : 0.0;
  out.acc =
      out.tokens > 0 ? static_cast<double>(out.correct) / static_cast<double>(out.tokens) : 0.0;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace vlmd
