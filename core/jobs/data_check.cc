#include "core/jobs/data_check.h"

#include "absl/strings/str_cat.h"
#include "core/io/model_config.h"
#include "core/text/tokenizer.h"
#include "core/train/job_data.h"

namespace vlmd::jobs {

StatusOr<DataCheckResult> CheckJobData(const JobSpec& spec, const api::JobServiceConfig& config,
                                       const std::atomic<bool>& stop) {
  ASSIGN_OR_RETURN(ModelConfig model, ModelConfig::Load(spec.model));
  ASSIGN_OR_RETURN(PreprocessorConfig preprocessor, PreprocessorConfig::LoadOrDefault(spec.model));
  ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer,
                   Tokenizer::Load(spec.model, config.tokenizer_fallback));
  if (stop) return absl::CancelledError("shutting down");
  // The same reading, validation and split the worker does (core/train/job_data.h).
  JobDataOptions options;
  options.data_root = config.data_root;
  options.allowed_roots = config.allowed_roots;
  options.stop = &stop;
  ASSIGN_OR_RETURN(JobData data, LoadJobData(spec, model, preprocessor, tokenizer, options));
  if (!data.ok()) return absl::InvalidArgumentError(data.Summary());
  DataCheckResult result;
  result.train_samples = static_cast<int64_t>(data.train.size());
  result.val_samples = static_cast<int64_t>(data.val.size());
  result.skipped_samples = data.train_report.skipped_too_long +
                           (data.val_report ? data.val_report->skipped_too_long : 0);
  result.report = data.Summary();
  return result;
}

}  // namespace vlmd::jobs
