// Generation metrics inside a training job (JobSpec.predict_with_generate): at each eval step
// (or only the last, generation_eval "end") the validation samples are decoded greedily with
// the adapter being trained, batched (GenerateBatched), scored against their references, and
// reported as eval_exact_match, eval_edit_distance, eval_edit_distance_token and eval_bleu;
// every prediction goes to <job>/eval_results/step-N.jsonl. Internal to core/ (torch).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/engine/model_bundle.h"
#include "core/eval/eval_items.h"
#include "core/train/job_spec.h"
#include "core/train/trainer.h"

namespace vlmd::eval {

class GenerationEvaluator : public EvalExtension {
 public:
  // For `spec` (its pixel limits, generation_* fields) on `bundle`; the first
  // spec.generation_max_samples of `val` (all when 0). Results go under `results_dir`
  // ("" = none). INVALID_ARGUMENT for a sample without a final assistant turn.
  static StatusOr<std::unique_ptr<GenerationEvaluator>> Create(
      const JobSpec& spec, std::shared_ptr<const ModelBundle> bundle,
      const std::vector<Sample>& val, std::string results_dir);

  Status Evaluate(const LoraAdapter& adapter, int64_t step, bool final,
                  std::map<std::string, double>* metrics) override;
  size_t size() const { return items_.size(); }

 private:
  GenerationEvaluator(const JobSpec& spec, std::shared_ptr<const ModelBundle> bundle,
                      std::vector<EvalItem> items, std::string results_dir);
  StatusOr<PreparedPrompt> Prepare(size_t index) const;

  JobSpec spec_;
  std::shared_ptr<const ModelBundle> bundle_;
  std::vector<EvalItem> items_;
  std::string results_dir_;
};

}  // namespace vlmd::eval
