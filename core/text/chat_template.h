// The Qwen2-VL Instruct chat template (spec/qwen2vl.md §5.1) and image placeholder expansion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// One item of a message's content: text, or an image (its bytes or path are held elsewhere;
// here only its position matters).
struct ContentPart {
  enum class Type { kText, kImage };
  Type type = Type::kText;
  std::string text;  // for kText
};

// One chat turn. `role` is "system", "user" or "assistant".
struct ChatMessage {
  std::string role;
  std::vector<ContentPart> content;
};

inline constexpr char kDefaultSystemPrompt[] = "You are a helpful assistant.";

// Renders messages as the Qwen2-VL template does: a default system turn when the first message
// is not a system message (skip it with an empty `default_system`), `<|im_start|>role\n...`
// turns, `<|vision_start|><|image_pad|><|vision_end|>` per image, and `<|im_start|>assistant\n`
// when `add_generation_prompt`.
std::string ApplyChatTemplate(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                              const std::string& default_system = kDefaultSystemPrompt);

// The same rendering cut into pieces, each marked trainable when it is assistant output that a
// fine-tuning loss covers (an assistant turn's content and its `<|im_end|>`; the "\n" after it
// is not). Adjacent pieces with the same flag are joined, so the pieces alternate. Concatenating
// the texts gives exactly ApplyChatTemplate's string.
struct TemplateSegment {
  std::string text;
  bool trainable = false;
};
std::vector<TemplateSegment> ChatTemplateSegments(
    const std::vector<ChatMessage>& messages, bool add_generation_prompt,
    const std::string& default_system = kDefaultSystemPrompt);

// Replaces the k-th occurrence of `image_token_id` in `ids` with `counts[k]` copies of it.
// INVALID_ARGUMENT when the number of placeholders differs from counts.size(), or a count is
// not positive.
StatusOr<std::vector<int32_t>> ExpandImageTokens(const std::vector<int32_t>& ids,
                                                 int32_t image_token_id,
                                                 const std::vector<int64_t>& counts);

}  // namespace vlmd
