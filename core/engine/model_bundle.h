// A served model: network, tokenizer and the configs that shape its inputs and outputs.
// Internal to core/ (torch). Immutable once loaded; shared by requests.
#pragma once

#include <memory>
#include <string>

#include "core/engine/prompt.h"
#include "core/io/model_config.h"
#include "core/model/qwen2vl.h"
#include "core/text/tokenizer.h"

namespace vlmd {

struct ModelBundle {
  std::string dir;
  std::shared_ptr<const Qwen2VL> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the model has none and no fallback
  PreprocessorConfig preprocessor;
  GenerationConfig generation;

  // Loads everything from a checkpoint directory. `tokenizer_fallback` is used when the
  // directory has no tokenizer.json (empty = none).
  static StatusOr<std::shared_ptr<const ModelBundle>> Load(const std::string& dir,
                                                           const ModelOptions& options,
                                                           const std::string& tokenizer_fallback);
  PromptContext prompt_context() const {
    return PromptContext{&model->config(), &preprocessor, tokenizer.get()};
  }
};

}  // namespace vlmd
