#include "core/engine/model_bundle.h"

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"

namespace vlmd {

StatusOr<std::shared_ptr<const ModelBundle>> ModelBundle::Load(
    const std::string& dir, const ModelOptions& options, const std::string& tokenizer_fallback) {
  if (!IsDirectory(dir)) {
    return absl::NotFoundError(absl::StrCat("model directory not found: ", dir));
  }
  auto bundle = std::make_shared<ModelBundle>();
  bundle->dir = dir;
  ASSIGN_OR_RETURN(bundle->model, Qwen2VL::Load(dir, options));
  ASSIGN_OR_RETURN(bundle->preprocessor, PreprocessorConfig::LoadOrDefault(dir));
  ASSIGN_OR_RETURN(bundle->generation,
                   GenerationConfig::LoadOrDefault(dir, bundle->model->config()));
  bool has_own = PathExists(JoinPath(dir, "tokenizer.json"));
  if (has_own || !tokenizer_fallback.empty()) {
    ASSIGN_OR_RETURN(bundle->tokenizer, Tokenizer::Load(dir, tokenizer_fallback));
  } else {
    VLMD_LOG(Warning) << "model " << dir << " has no tokenizer.json; only prompt_ids requests work";
  }
  return std::shared_ptr<const ModelBundle>(std::move(bundle));
}

}  // namespace vlmd
