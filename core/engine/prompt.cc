#include "core/engine/prompt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

Status ResolvePixelLimits(const PromptInput& input, const PreprocessorConfig& pre,
                          const ImagePolicy& policy, PreprocessOptions* options) {
  options->min_pixels = input.min_pixels.value_or(pre.min_pixels);
  options->max_pixels = input.max_pixels.value_or(pre.max_pixels);
  options->patch_size = pre.patch_size;
  options->temporal_patch_size = pre.temporal_patch_size;
  options->merge_size = pre.merge_size;
  options->mean = pre.image_mean;
  options->std = pre.image_std;
  if (options->min_pixels <= 0 || options->max_pixels < options->min_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("need 0 < min_pixels <= max_pixels (got ",
                                                   options->min_pixels, " and ",
                                                   options->max_pixels, ")"));
  }
  if (options->max_pixels > policy.max_pixels_limit) {
    return absl::InvalidArgumentError(absl::StrCat("max_pixels ", options->max_pixels,
                                                   " exceeds the server limit of ",
                                                   policy.max_pixels_limit));
  }
  return absl::OkStatus();
}

int64_t CountImageParts(const std::vector<ChatMessage>& messages) {
  int64_t n = 0;
  for (const ChatMessage& m : messages) {
    for (const ContentPart& p : m.content) n += p.type == ContentPart::Type::kImage;
  }
  return n;
}

StatusOr<std::vector<int32_t>> TokenizePrompt(const PromptInput& input,
                                              const PromptContext& context) {
  const int32_t image_id = context.config->image_token_id;
  int64_t placeholders = 0;
  std::vector<int32_t> ids;
  if (input.prompt_ids) {
    ids = *input.prompt_ids;
    for (int32_t id : ids) {
      if (id < 0 || id >= context.config->text.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "prompt id ", id, " is outside the vocabulary (size ", context.config->text.vocab_size,
            ")"));
      }
      placeholders += id == image_id;
    }
  } else {
    if (context.tokenizer == nullptr) {
      return absl::FailedPreconditionError("model has no tokenizer; send prompt_ids");
    }
    for (const ChatMessage& m : input.messages) {
      if (m.role != "system" && m.role != "user" && m.role != "assistant") {
        return absl::InvalidArgumentError(absl::StrCat("unknown message role '", m.role,
                                                       "' (system, user, assistant)"));
      }
    }
    ids = context.tokenizer->Encode(ApplyChatTemplate(input.messages, input.add_generation_prompt));
    placeholders = CountImageParts(input.messages);
  }
  if (placeholders != static_cast<int64_t>(input.images.size())) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", placeholders,
                                                   " image placeholders but ", input.images.size(),
                                                   " images were given"));
  }
  return ids;
}

}  // namespace

std::string ImageSource::Describe(size_t index) const {
  return path.empty() ? absl::StrCat("image ", index) : absl::StrCat("image ", index, " (", path, ")");
}

StatusOr<std::string> LoadImageBytes(const ImageSource& src, size_t index,
                                     const ImagePolicy& policy) {
  if (!src.bytes.empty()) return src.bytes;
  if (src.path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("image ", index, " has neither bytes nor path"));
  }
  std::string path = src.path;
  if (policy.allowed_roots) {
    ASSIGN_OR_RETURN(path, ResolveUnderRoots(src.path, *policy.allowed_roots));
  }
  // Only regular files: a FIFO would block the request thread forever and a device such as
  // /dev/zero would be read until memory runs out. O_NONBLOCK keeps open() itself from waiting
  // for a FIFO's writer. The read is bounded by the byte limit even if the file grows.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ReadFile(path);  // NOT_FOUND / PERMISSION_DENIED naming the path
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(src.Describe(index), " is not a regular file"));
  }
  const int64_t limit = policy.decode.max_bytes > 0 ? policy.decode.max_bytes : INT64_MAX - 1;
  if (st.st_size > limit) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(src.Describe(index), " is ", st.st_size,
                                                   " bytes, over the limit of ", limit));
  }
  std::string bytes(static_cast<size_t>(st.st_size) + 1, '\0');  // +1 sees growth
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got != static_cast<size_t>(st.st_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.Describe(index), " changed while it was read"));
  }
  bytes.resize(got);
  return bytes;
}

StatusOr<PreparedPrompt> PreparePrompt(const PromptInput& input, const PromptContext& context,
                                       const ImagePolicy& policy) {
  if (!input.prompt_ids && input.messages.empty()) {
    return absl::InvalidArgumentError("request has no messages");
  }
  if (input.prompt_ids && input.prompt_ids->empty()) {
    return absl::InvalidArgumentError("prompt_ids is empty");
  }
  if (static_cast<int64_t>(input.images.size()) > policy.max_images) {
    return absl::InvalidArgumentError(absl::StrCat(input.images.size(), " images, over the limit of ",
                                                   policy.max_images));
  }
  PreprocessOptions options;
  RETURN_IF_ERROR(ResolvePixelLimits(input, *context.preprocessor, policy, &options));
  PreparedPrompt out;
  out.min_pixels = options.min_pixels;
  out.max_pixels = options.max_pixels;
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, TokenizePrompt(input, context));
  std::vector<int64_t> counts;
  for (size_t i = 0; i < input.images.size(); ++i) {
    std::string what = input.images[i].Describe(i);
    ASSIGN_OR_RETURN(std::string bytes, LoadImageBytes(input.images[i], i, policy));
    ASSIGN_OR_RETURN(RgbImage rgb, DecodeImage(bytes, policy.decode, what));
    StatusOr<PixelPatches> patches = PreprocessImage(rgb, options);
    if (!patches.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", patches.status().message()));
    }
    counts.push_back(patches->num_tokens(options.merge_size));
    out.image_tokens += counts.back();
    out.images.push_back(std::move(*patches));
  }
  ASSIGN_OR_RETURN(out.ids, ExpandImageTokens(ids, context.config->image_token_id, counts));
  return out;
}

namespace {

StatusOr<ChatMessage> ParseMessage(const json& m, const std::string& base_dir,
                                   std::vector<ImageSource>* images) {
  if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
    return absl::InvalidArgumentError("each message needs a string \"role\" and a \"content\"");
  }
  ChatMessage msg;
  msg.role = m["role"].get<std::string>();
  const json& c = m["content"];
  if (c.is_string()) {
    msg.content.push_back({ContentPart::Type::kText, c.get<std::string>()});
    return msg;
  }
  if (!c.is_array()) return absl::InvalidArgumentError("content must be a string or a list");
  for (const json& part : c) {
    std::string type = part.is_object() ? part.value("type", std::string()) : "";
    if (type == "text" && part.contains("text") && part["text"].is_string()) {
      msg.content.push_back({ContentPart::Type::kText, part["text"].get<std::string>()});
    } else if ((type == "image" || part.contains("image")) && part.contains("image") &&
               part["image"].is_string()) {
      std::string path = part["image"].get<std::string>();
      if (!path.empty() && path[0] != '/') path = JoinPath(base_dir, path);
      images->push_back({path, ""});
      msg.content.push_back({ContentPart::Type::kImage, ""});
    } else {
      return absl::InvalidArgumentError(
          "content parts must be {\"type\":\"text\",\"text\":...} or {\"type\":\"image\",\"image\":path}");
    }
  }
  return msg;
}

}  // namespace

StatusOr<PromptInput> ParsePromptJson(const std::string& text, const std::string& source,
                                      const std::string& base_dir) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  PromptInput in;
  auto fail = [&](const Status& s) {
    return absl::Status(s.code(), absl::StrCat(source, ": ", s.message()));
  };
  try {
    if (j.contains("prompt_ids")) {
      in.prompt_ids = j["prompt_ids"].get<std::vector<int32_t>>();
      for (const json& p : j.value("images", json::array())) {
        std::string path = p.get<std::string>();
        if (!path.empty() && path[0] != '/') path = JoinPath(base_dir, path);
        in.images.push_back({path, ""});
      }
    } else if (j.contains("messages") && j["messages"].is_array()) {
      for (const json& m : j["messages"]) {
        StatusOr<ChatMessage> msg = ParseMessage(m, base_dir, &in.images);
        if (!msg.ok()) return fail(msg.status());
        in.messages.push_back(std::move(*msg));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(source, ": needs \"messages\" or \"prompt_ids\""));
    }
    if (j.contains("min_pixels")) in.min_pixels = j["min_pixels"].get<int64_t>();
    if (j.contains("max_pixels")) in.max_pixels = j["max_pixels"].get<int64_t>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return in;
}

}  // namespace vlmd
