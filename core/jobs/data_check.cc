#include "core/jobs/data_check.h"

#include "absl/strings/str_cat.h"
#include "core/io/model_config.h"
#include "core/text/tokenizer.h"

namespace vlmd::jobs {

StatusOr<DataCheckResult> CheckJobData(const JobSpec& spec, const api::JobServiceConfig& config,
                                       const std::atomic<bool>& stop) {
  ASSIGN_OR_RETURN(ModelConfig model, ModelConfig::Load(spec.model));
  ASSIGN_OR_RETURN(PreprocessorConfig preprocessor, PreprocessorConfig::LoadOrDefault(spec.model));
  ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer,
                   Tokenizer::Load(spec.model, config.tokenizer_fallback));
  if (stop) return absl::CancelledError("shutting down");
  DataCheckResult result;
  // The data lines and image headers are checked by core/train's ValidateDataset (branch
  // trainio), called here with `tokenizer`, `model` and `preprocessor` once it is merged.
  (void)model;
  (void)preprocessor;
  result.report = absl::StrCat("model ", spec.model, ": config, preprocessor and tokenizer (",
                               tokenizer->Size(), " ids) load; data lines not checked yet");
  return result;
}

}  // namespace vlmd::jobs
