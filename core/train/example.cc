#include "core/train/example.h"

#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

// Prefixes a status message with the sample's file:line.
Status Located(const Sample& sample, const Status& status) {
  return Status(status.code(), absl::StrCat(sample.file, ":", sample.line, ": ", status.message()));
}

StatusOr<PixelPatches> LoadAndPreprocess(const ImageSource& source, size_t index,
                                         const ExampleOptions& options) {
  const std::string what = source.Describe(index);
  ASSIGN_OR_RETURN(std::string bytes, LoadImageBytes(source, index, options.images));
  ASSIGN_OR_RETURN(RgbImage rgb, DecodeImage(bytes, options.images.decode, what));
  StatusOr<PixelPatches> patches = PreprocessImage(rgb, options.preprocess);
  if (!patches.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", patches.status().message()));
  }
  return patches;
}

// Replaces the k-th placeholder in ids and labels by counts[k] placeholders / ignored labels.
void ExpandPlaceholders(const TemplateTokens& text, const std::vector<int64_t>& counts,
                        int32_t image_token_id, TokenizedExample* out) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const size_t size = text.ids.size() - counts.size() + static_cast<size_t>(total);
  out->ids.reserve(size);
  out->labels.reserve(size);
  size_t next = 0;
  for (size_t i = 0; i < text.ids.size(); ++i) {
    const bool placeholder = text.ids[i] == image_token_id;
    const int64_t copies = placeholder ? counts[next++] : 1;
    out->ids.insert(out->ids.end(), copies, text.ids[i]);
    out->labels.insert(out->labels.end(), copies, placeholder ? kIgnoreLabel : text.labels[i]);
  }
}

}  // namespace

StatusOr<ExampleOptions> MakeExampleOptions(const ModelConfig& config,
                                            const PreprocessorConfig& preprocessor,
                                            std::shared_ptr<const Tokenizer> tokenizer,
                                            std::optional<int64_t> min_pixels,
                                            std::optional<int64_t> max_pixels) {
  ExampleOptions options;
  options.tokenizer = std::move(tokenizer);
  options.image_token_id = config.image_token_id;
  PreprocessOptions& p = options.preprocess;
  p.min_pixels = min_pixels.value_or(preprocessor.min_pixels);
  p.max_pixels = max_pixels.value_or(preprocessor.max_pixels);
  p.patch_size = preprocessor.patch_size;
  p.temporal_patch_size = preprocessor.temporal_patch_size;
  p.merge_size = preprocessor.merge_size;
  p.mean = preprocessor.image_mean;
  p.std = preprocessor.image_std;
  if (p.min_pixels <= 0 || p.max_pixels < p.min_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("need 0 < min_pixels <= max_pixels (got ",
                                                   p.min_pixels, " and ", p.max_pixels, ")"));
  }
  return options;
}

StatusOr<TemplateTokens> TokenizeTemplate(const Sample& sample, const ExampleOptions& options) {
  if (options.tokenizer == nullptr) return absl::FailedPreconditionError("no tokenizer");
  TemplateTokens out;
  for (const TemplateSegment& segment : ChatTemplateSegments(
           sample.messages, /*add_generation_prompt=*/false, options.default_system)) {
    const std::vector<int32_t> ids = options.tokenizer->Encode(segment.text);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    if (segment.trainable) {
      out.labels.insert(out.labels.end(), ids.begin(), ids.end());
    } else {
      out.labels.insert(out.labels.end(), ids.size(), kIgnoreLabel);
    }
  }
  for (int32_t id : out.ids) out.num_images += id == options.image_token_id;
  if (out.num_images != static_cast<int64_t>(sample.images.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the rendered text holds ", out.num_images, " image placeholders but the sample has ",
        sample.images.size(), " images (does the text spell out <|image_pad|>?)"));
  }
  return out;
}

StatusOr<int64_t> ImageTokenCount(int height, int width, const PreprocessOptions& options) {
  const int factor = options.patch_size * options.merge_size;
  ASSIGN_OR_RETURN(ResizedSize size,
                   SmartResize(height, width, factor, options.min_pixels, options.max_pixels));
  const int64_t patches =
      static_cast<int64_t>(size.height / options.patch_size) * (size.width / options.patch_size);
  return patches / (options.merge_size * options.merge_size);
}

StatusOr<TokenizedExample> BuildExample(const Sample& sample, const ExampleOptions& options) {
  StatusOr<TemplateTokens> text = TokenizeTemplate(sample, options);
  if (!text.ok()) return Located(sample, text.status());
  TokenizedExample out;
  std::vector<int64_t> counts;
  for (size_t i = 0; i < sample.images.size(); ++i) {
    StatusOr<PixelPatches> patches = LoadAndPreprocess(sample.images[i], i, options);
    if (!patches.ok()) return Located(sample, patches.status());
    counts.push_back(patches->num_tokens(options.preprocess.merge_size));
    out.image_tokens += counts.back();
    out.images.push_back(std::move(*patches));
  }
  ExpandPlaceholders(*text, counts, options.image_token_id, &out);
  return out;
}

}  // namespace vlmd
