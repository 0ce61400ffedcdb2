#include "core/text/chat_template.h"

#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";
constexpr char kImageItem[] = "<|vision_start|><|image_pad|><|vision_end|>";

// Appends `text` to the last segment when it has the same trainable flag, else starts a new one.
void Append(std::vector<TemplateSegment>* segments, std::string_view text, bool trainable) {
  if (text.empty()) return;
  if (!segments->empty() && segments->back().trainable == trainable) {
    segments->back().text.append(text);
  } else {
    segments->push_back({std::string(text), trainable});
  }
}

std::string RenderContent(const std::vector<ContentPart>& content) {
  std::string out;
  for (const ContentPart& part : content) {
    if (part.type == ContentPart::Type::kImage) {
      out += kImageItem;
    } else {
      out += part.text;
    }
  }
  return out;
}

}  // namespace

std::vector<TemplateSegment> ChatTemplateSegments(const std::vector<ChatMessage>& messages,
                                                  bool add_generation_prompt,
                                                  const std::string& default_system) {
  std::vector<TemplateSegment> segments;
  bool has_system = !messages.empty() && messages.front().role == "system";
  if (!has_system && !default_system.empty()) {
    Append(&segments, absl::StrCat(kImStart, "system\n", default_system, kImEnd, "\n"), false);
  }
  for (const ChatMessage& message : messages) {
    bool assistant = message.role == "assistant";
    Append(&segments, absl::StrCat(kImStart, message.role, "\n"), false);
    // The loss covers an assistant's answer and the <|im_end|> that stops it.
    Append(&segments, absl::StrCat(RenderContent(message.content), kImEnd), assistant);
    Append(&segments, "\n", false);
  }
  if (add_generation_prompt) Append(&segments, absl::StrCat(kImStart, "assistant\n"), false);
  return segments;
}

std::string ApplyChatTemplate(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                              const std::string& default_system) {
  std::string out;
  for (const TemplateSegment& segment :
       ChatTemplateSegments(messages, add_generation_prompt, default_system)) {
    out += segment.text;
  }
  return out;
}

StatusOr<std::vector<int32_t>> ExpandImageTokens(const std::vector<int32_t>& ids,
                                                 int32_t image_token_id,
                                                 const std::vector<int64_t>& counts) {
  size_t placeholders = 0;
  int64_t total = 0;
  for (int32_t id : ids) placeholders += id == image_token_id;
  if (placeholders != counts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the token ids hold ", placeholders,
                                                   " image placeholders (id ", image_token_id,
                                                   ") but ", counts.size(), " images were given"));
  }
  for (size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", k, " has a token count of ", counts[k], "; it must be positive"));
    }
    total += counts[k];
  }
  std::vector<int32_t> out;
  out.reserve(ids.size() - placeholders + total);
  size_t next_image = 0;
  for (int32_t id : ids) {
    if (id != image_token_id) {
      out.push_back(id);
    } else {
      out.insert(out.end(), counts[next_image++], image_token_id);
    }
  }
  return out;
}

}  // namespace vlmd
