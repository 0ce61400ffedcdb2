#include "core/eval/generation_eval.h"

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/eval/batch_generate.h"
#include "core/eval/results_file.h"

namespace vlmd::eval {

StatusOr<std::unique_ptr<GenerationEvaluator>> GenerationEvaluator::Create(
    const JobSpec& spec, std::shared_ptr<const ModelBundle> bundle, const std::vector<Sample>& val,
    std::string results_dir) {
  size_t count = val.size();
  if (spec.generation_max_samples > 0) {
    count = std::min(count, static_cast<size_t>(spec.generation_max_samples));
  }
  ASSIGN_OR_RETURN(std::vector<EvalItem> items,
                   MakeEvalItems(std::vector<Sample>(val.begin(), val.begin() + count)));
  return std::unique_ptr<GenerationEvaluator>(
      new GenerationEvaluator(spec, std::move(bundle), std::move(items), std::move(results_dir)));
}

GenerationEvaluator::GenerationEvaluator(const JobSpec& spec,
                                         std::shared_ptr<const ModelBundle> bundle,
                                         std::vector<EvalItem> items, std::string results_dir)
    : spec_(spec),
      bundle_(std::move(bundle)),
      items_(std::move(items)),
      results_dir_(std::move(results_dir)) {}

StatusOr<PreparedPrompt> GenerationEvaluator::Prepare(size_t index) const {
  // The job's pixel limits, as training used them; images are read from anywhere, as the
  // worker reads its (already validated) data.
  PromptInput input = ToPromptInput(items_[index], spec_.min_pixels, spec_.max_pixels);
  return PreparePrompt(input, bundle_->prompt_context(), ImagePolicy());
}

Status GenerationEvaluator::Evaluate(const LoraAdapter& adapter, int64_t step, bool final,
                                     std::map<std::string, double>* metrics) {
  if (!spec_.GenerationAt(final) || items_.empty()) return absl::OkStatus();
  SamplingRequest request;
  request.temperature = 0.0;  // greedy
  request.max_new_tokens = spec_.generation_max_new_tokens;
  ASSIGN_OR_RETURN(SamplingParams params,
                   ResolveSampling(request, bundle_->generation, spec_.generation_max_new_tokens));
  std::unique_ptr<OrderedResultsFile> file;
  if (!results_dir_.empty()) {
    RETURN_IF_ERROR(MakeDirs(results_dir_, 0750));
    ASSIGN_OR_RETURN(file, OrderedResultsFile::Create(
                               JoinPath(results_dir_, absl::StrCat("step-", step, ".jsonl"))));
  }
  ScoreAccumulator scores;
  BatchGenerateOptions options;
  options.batch_size = spec_.generation_batch_size;
  auto prepare = [this](size_t i) { return Prepare(i); };
  auto done = [&](size_t i, const GenerationResult& g) {
    api::EvalSampleResult r = ScoreSample(items_[i], g.text);
    r.finish_reason = FinishReasonName(g.finish_reason);
    r.completion_tokens = g.usage.completion_tokens;
    scores.Add(r);
    if (file) file->Put(i, ResultLine(r));
  };
  RETURN_IF_ERROR(
      GenerateBatched(*bundle_, &adapter, items_.size(), prepare, params, options, done).status());
  if (file) RETURN_IF_ERROR(file->Close());
  for (const auto& [name, value] : scores.Metrics()) (*metrics)[name] = value;
  return absl::OkStatus();
}

}  // namespace vlmd::eval
