// A Sample turned into what the trainer consumes: token ids with image placeholders expanded,
// labels that cover exactly the assistant turns (SWIFT's rule, spec/swift.md §2), and the
// preprocessed images. Shares its text tokenization with the validator, so the token counts
// that validation reports are the lengths BuildExample produces. No torch; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/engine/prompt.h"
#include "core/io/model_config.h"
#include "core/text/tokenizer.h"
#include "core/train/dataset.h"
#include "core/vision/image.h"

namespace vlmd {

// The label of a position no loss is taken on (PyTorch's ignore_index).
inline constexpr int32_t kIgnoreLabel = -100;

// Everything needed to tokenize samples and preprocess their images.
struct ExampleOptions {
  std::shared_ptr<const Tokenizer> tokenizer;
  int32_t image_token_id = 151655;  // <|image_pad|>
  // Pixel limits (the job's min/max_pixels, else the model's preprocessor config), patch and
  // merge sizes, normalisation.
  PreprocessOptions preprocess;
  // Roots images must stay under (nullopt = anywhere) and the decode limits.
  ImagePolicy images;
  // The system turn added when a sample has none ("" = no system turn).
  std::string default_system = kDefaultSystemPrompt;
};

// ExampleOptions for a model: ids from `config`, preprocessing from `preprocessor`, with the
// job's pixel limits when given. INVALID_ARGUMENT unless 0 < min_pixels <= max_pixels.
StatusOr<ExampleOptions> MakeExampleOptions(const ModelConfig& config,
                                            const PreprocessorConfig& preprocessor,
                                            std::shared_ptr<const Tokenizer> tokenizer,
                                            std::optional<int64_t> min_pixels,
                                            std::optional<int64_t> max_pixels);

// The rendered chat template tokenized segment by segment (as SWIFT tokenizes prompt and
// response separately), with one <|image_pad|> per image.
struct TemplateTokens {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // the id in trainable segments, kIgnoreLabel elsewhere
  int64_t num_images = 0;       // single placeholders in `ids`
};
// INVALID_ARGUMENT when the placeholders found differ from the sample's images (e.g. text
// that spells out "<|image_pad|>").
StatusOr<TemplateTokens> TokenizeTemplate(const Sample& sample, const ExampleOptions& options);

// The number of <|image_pad|> tokens an image of height x width becomes: smart_resize to
// multiples of patch*merge inside [min_pixels, max_pixels], then (h/patch)*(w/patch)/merge^2,
// i.e. (h/28)*(w/28) for Qwen2-VL. INVALID_ARGUMENT for aspect ratios over 200.
StatusOr<int64_t> ImageTokenCount(int height, int width, const PreprocessOptions& options);

// One training example.
struct TokenizedExample {
  std::vector<int32_t> ids;     // image placeholders expanded
  std::vector<int32_t> labels;  // same length: the id where trainable, kIgnoreLabel elsewhere
  std::vector<PixelPatches> images;
  int64_t image_tokens = 0;  // placeholder tokens after expansion
};

// Tokenizes `sample` (add_generation_prompt = false; the default system turn when it has
// none), loads, decodes and preprocesses its images and expands their placeholders. Labels
// cover each assistant turn's text and its <|im_end|>; system, user, image tokens and the "\n"
// after <|im_end|> are kIgnoreLabel. Errors name file:line of the sample.
StatusOr<TokenizedExample> BuildExample(const Sample& sample, const ExampleOptions& options);

}  // namespace vlmd
