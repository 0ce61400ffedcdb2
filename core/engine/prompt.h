// Turning a request (chat messages or raw prompt ids, plus images) into model input: chat
// template, tokenization, image preprocessing and placeholder expansion. No torch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/text/chat_template.h"
#include "core/text/tokenizer.h"
#include "core/vision/image.h"

namespace vlmd {

// One image of a request: inline bytes, or a path on this machine.
struct ImageSource {
  std::string path;   // used when bytes is empty
  std::string bytes;  // encoded PNG/JPEG/BMP/GIF
  std::string Describe(size_t index) const;
};

// A request before tokenization. Exactly one of `messages` / `prompt_ids` is used.
struct PromptInput {
  std::vector<ChatMessage> messages;  // image parts refer to `images` in order
  std::optional<std::vector<int32_t>> prompt_ids;  // every image_token_id stands for one image
  std::vector<ImageSource> images;
  std::optional<int64_t> min_pixels, max_pixels;
  bool add_generation_prompt = true;
};

// Where images may be read from and how large they may be.
struct ImagePolicy {
  // Paths must resolve under one of these roots; nullopt = any path (the offline tool).
  std::optional<std::vector<std::string>> allowed_roots;
  DecodeLimits decode;
  int64_t max_images = 16;
  // Bounds for request-supplied min/max pixels (spec defaults allow up to 16384 tokens).
  int64_t max_pixels_limit = 12845056;
};

// Reads an image's encoded bytes: `src.bytes` when set, else the file at `src.path` (resolved
// under policy.allowed_roots when set; refused over policy.decode.max_bytes). Errors name the
// image as src.Describe(index) does: PERMISSION_DENIED outside the roots, NOT_FOUND for a
// missing file, INVALID_ARGUMENT over the size limit. Thread-safe. Also used by core/train.
StatusOr<std::string> LoadImageBytes(const ImageSource& src, size_t index,
                                     const ImagePolicy& policy);

// Model input for one sequence.
struct PreparedPrompt {
  std::vector<int32_t> ids;          // image placeholders expanded
  std::vector<PixelPatches> images;  // in order of appearance
  int64_t image_tokens = 0;          // placeholder tokens after expansion
  int64_t min_pixels = 0, max_pixels = 0;  // the limits that were applied
};

// Everything PreparePrompt needs about a model.
struct PromptContext {
  const ModelConfig* config = nullptr;
  const PreprocessorConfig* preprocessor = nullptr;
  const Tokenizer* tokenizer = nullptr;  // may be null for prompt_ids requests
};

// Renders, tokenizes, loads and preprocesses images, expands placeholders. Errors are
// INVALID_ARGUMENT (bad request or image), PERMISSION_DENIED (path outside the roots) or
// NOT_FOUND (missing image file), each naming the offending part.
StatusOr<PreparedPrompt> PreparePrompt(const PromptInput& input, const PromptContext& context,
                                       const ImagePolicy& policy);

// Parses the offline tool's REQ.json ({"messages": [...]} or {"prompt_ids": [...],
// "images": [...]}, optional "min_pixels"/"max_pixels"). Image paths are relative to `base_dir`
// when not absolute.
StatusOr<PromptInput> ParsePromptJson(const std::string& text, const std::string& source,
                                      const std::string& base_dir);

}  // namespace vlmd
