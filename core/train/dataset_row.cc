#include "core/train/dataset_row.h"

#include <climits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/file_util.h"

namespace vlmd::train_internal {
namespace {

using json = nlohmann::json;
using Part = ContentPart::Type;

constexpr char kImageTag[] = "<image>";
constexpr size_t kImageTagSize = sizeof(kImageTag) - 1;

// Returns from the enclosing function when `expr` yields a RowError.
#define RETURN_IF_ROW_ERROR(expr)                  \
  do {                                             \
    std::optional<RowError> row_error_ = (expr);   \
    if (row_error_.has_value()) return row_error_; \
  } while (0)

RowError Bad(std::string reason) { return {IssueKind::kBadRow, std::move(reason)}; }

ChatMessage TextMessage(std::string role, std::string text) {
  ChatMessage message;
  message.role = std::move(role);
  message.content.push_back({Part::kText, std::move(text)});
  return message;
}

// An optional string field: untouched when absent or null, an error for another JSON type.
std::optional<RowError> OptionalString(const json& row, const char* key, std::string* out) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    return Bad(absl::StrCat("\"", key, "\" must be a string (got ", it->type_name(), ")"));
  }
  *out = it->get<std::string>();
  return std::nullopt;
}

std::optional<RowError> RequiredString(const json& row, const char* key, std::string* out) {
  if (!row.contains(key) || row[key].is_null()) return Bad(absl::StrCat("missing \"", key, "\""));
  return OptionalString(row, key, out);
}

// A list field; CSV cells hold it as JSON text. Absent or null gives an empty list.
std::optional<RowError> ListField(const json& row, const char* key, bool from_csv, json* out) {
  *out = json::array();
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return std::nullopt;
  if (from_csv && it->is_string() && absl::StartsWith(it->get<std::string>(), "[")) {
    *out = json::parse(it->get<std::string>(), nullptr, false);
    if (out->is_discarded()) return Bad(absl::StrCat("\"", key, "\" cell is not a JSON list"));
    return std::nullopt;
  }
  if (it->is_array()) *out = *it;
  if (!it->is_array()) return Bad(absl::StrCat("\"", key, "\" must be a list"));
  return std::nullopt;
}

// history: [[query, response], ...] before the current turn.
std::optional<RowError> ParseHistory(const json& row, bool from_csv,
                                     std::vector<ChatMessage>* messages) {
  json history;
  RETURN_IF_ROW_ERROR(ListField(row, "history", from_csv, &history));
  for (size_t i = 0; i < history.size(); ++i) {
    const json& pair = history[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      return Bad(absl::StrCat("history[", i, "] must be a [query, response] pair of strings"));
    }
    messages->push_back(TextMessage("user", pair[0].get<std::string>()));
    messages->push_back(TextMessage("assistant", pair[1].get<std::string>()));
  }
  return std::nullopt;
}

std::optional<RowError> ParseQueryResponse(const json& row, const RowContext& context,
                                           std::vector<ChatMessage>* messages) {
  std::string query, response;
  RETURN_IF_ROW_ERROR(OptionalString(row, "query", &query));
  RETURN_IF_ROW_ERROR(RequiredString(row, "response", &response));
  RETURN_IF_ROW_ERROR(ParseHistory(row, context.from_csv, messages));
  messages->push_back(TextMessage("user", std::move(query)));
  messages->push_back(TextMessage("assistant", std::move(response)));
  return std::nullopt;
}

// Alpaca: the query is the instruction, plus "\n" and the input when there is one.
std::optional<RowError> ParseInstruction(const json& row, const RowContext& context,
                                         std::vector<ChatMessage>* messages) {
  std::string instruction, input, output;
  RETURN_IF_ROW_ERROR(RequiredString(row, "instruction", &instruction));
  RETURN_IF_ROW_ERROR(OptionalString(row, "input", &input));
  RETURN_IF_ROW_ERROR(RequiredString(row, "output", &output));
  RETURN_IF_ROW_ERROR(ParseHistory(row, context.from_csv, messages));
  messages->push_back(
      TextMessage("user", input.empty() ? instruction : absl::StrCat(instruction, "\n", input)));
  messages->push_back(TextMessage("assistant", std::move(output)));
  return std::nullopt;
}

std::optional<RowError> ParseLatexOcr(const json& row, std::vector<ChatMessage>* messages) {
  std::string text;
  RETURN_IF_ROW_ERROR(RequiredString(row, "text", &text));
  messages->push_back(TextMessage("user", kLatexOcrQuery));
  messages->push_back(TextMessage("assistant", std::move(text)));
  return std::nullopt;
}

// The path of an image content part ({"type": "image", "image": path} or "image_url" as a
// string or {"url": ...}); "" for a part that only marks a position.
std::string ImagePartPath(const json& part) {
  if (part.contains("image") && part["image"].is_string()) return part["image"].get<std::string>();
  if (!part.contains("image_url")) return "";
  const json& url = part["image_url"];
  if (url.is_string()) return url.get<std::string>();
  if (url.is_object() && url.contains("url") && url["url"].is_string()) {
    return url["url"].get<std::string>();
  }
  return "";
}

std::optional<RowError> ParseContentList(const json& parts, size_t index, ChatMessage* message,
                                         std::vector<std::string>* part_images) {
  for (const json& part : parts) {
    std::string type;
    if (part.is_object() && part.contains("type") && part["type"].is_string()) {
      type = part["type"].get<std::string>();
    }
    if (type == "text" && part.contains("text") && part["text"].is_string()) {
      message->content.push_back({Part::kText, part["text"].get<std::string>()});
    } else if (type == "image" || type == "image_url") {
      message->content.push_back({Part::kImage, ""});
      const std::string path = ImagePartPath(part);
      if (!path.empty()) part_images->push_back(path);
    } else {
      return Bad(absl::StrCat("messages[", index,
                              "].content parts must be {\"type\": \"text\", "
                              "\"text\": ...} or {\"type\": \"image\", \"image\": path}"));
    }
  }
  return std::nullopt;
}

std::optional<RowError> ParseMessageList(const json& row, std::vector<ChatMessage>* messages,
                                         std::vector<std::string>* part_images) {
  const json& list = row["messages"];
  if (!list.is_array()) return Bad("\"messages\" must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      return Bad(absl::StrCat("messages[", i, "] needs a string \"role\" and a \"content\""));
    }
    ChatMessage message;
    message.role = m["role"].get<std::string>();
    if (m["content"].is_string()) {
      message.content.push_back({Part::kText, m["content"].get<std::string>()});
    } else if (m["content"].is_array()) {
      RETURN_IF_ROW_ERROR(ParseContentList(m["content"], i, &message, part_images));
    } else {
      return Bad(absl::StrCat("messages[", i, "].content must be a string or a list"));
    }
    messages->push_back(std::move(message));
  }
  return std::nullopt;
}

// ShareGPT: [{"from": "human"|"user"|"gpt"|"assistant"|"system", "value": text}, ...].
std::optional<RowError> ParseConversations(const json& row, std::vector<ChatMessage>* messages) {
  const json& list = row["conversations"];
  if (!list.is_array()) return Bad("\"conversations\" must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    if (!m.is_object() || !m.contains("from") || !m["from"].is_string() || !m.contains("value") ||
        !m["value"].is_string()) {
      return Bad(absl::StrCat("conversations[", i, "] needs string \"from\" and \"value\""));
    }
    const std::string from = m["from"].get<std::string>();
    std::string role = from == "human" ? "user" : from == "gpt" ? "assistant" : from;
    if (role != "user" && role != "assistant" && role != "system") {
      return Bad(absl::StrCat("conversations[", i, "].from '", from,
                              "' is not human, gpt, user, assistant or system"));
    }
    messages->push_back(TextMessage(std::move(role), m["value"].get<std::string>()));
  }
  return std::nullopt;
}

std::string KeyList(const json& row) {
  std::vector<std::string> keys;
  for (auto it = row.begin(); it != row.end(); ++it) keys.push_back(it.key());
  return keys.empty() ? "none" : absl::StrJoin(keys, ", ");
}

std::optional<RowError> ParseLayout(const json& row, const RowContext& context,
                                    std::vector<ChatMessage>* messages,
                                    std::vector<std::string>* part_images) {
  if (row.contains("messages")) return ParseMessageList(row, messages, part_images);
  if (row.contains("conversations")) return ParseConversations(row, messages);
  if (row.contains("instruction") || row.contains("output")) {
    return ParseInstruction(row, context, messages);
  }
  if (row.contains("query") || row.contains("response")) {
    return ParseQueryResponse(row, context, messages);
  }
  if (context.latex_ocr && row.contains("text")) return ParseLatexOcr(row, messages);
  return Bad(
      absl::StrCat("no known layout: expected \"messages\", \"conversations\", "
                   "\"query\"/\"response\" or \"instruction\"/\"output\" (keys: ",
                   KeyList(row), ")"));
}

// A non-empty "system" column becomes the system turn unless the conversation has one.
std::optional<RowError> AddSystem(const json& row, std::vector<ChatMessage>* messages) {
  std::string system;
  RETURN_IF_ROW_ERROR(OptionalString(row, "system", &system));
  const bool has_system = !messages->empty() && messages->front().role == "system";
  if (!system.empty() && !has_system) {
    messages->insert(messages->begin(), TextMessage("system", std::move(system)));
  }
  return std::nullopt;
}

// The "images" column (a list of paths or one path; LaTeX_OCR rows may say "image").
std::optional<RowError> ReadImagePaths(const json& row, const RowContext& context,
                                       std::vector<std::string>* paths) {
  const char* key = context.latex_ocr && !row.contains("images") ? "image" : "images";
  auto it = row.find(key);
  const bool csv_list = context.from_csv && it != row.end() && it->is_string() &&
                        absl::StartsWith(it->get<std::string>(), "[");
  if (it != row.end() && it->is_string() && !csv_list) {
    if (!it->get<std::string>().empty()) paths->push_back(it->get<std::string>());
    return std::nullopt;
  }
  json list;
  RETURN_IF_ROW_ERROR(ListField(row, key, context.from_csv, &list));
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string() || list[i].get<std::string>().empty()) {
      return Bad(absl::StrCat("\"", key, "\"[", i, "] must be a non-empty path string"));
    }
    paths->push_back(list[i].get<std::string>());
  }
  return std::nullopt;
}

std::optional<RowError> ResolveImage(const std::string& path, const RowContext& context,
                                     ImageSource* out) {
  if (absl::StartsWith(path, "http://") || absl::StartsWith(path, "https://") ||
      absl::StartsWith(path, "data:") || path.size() >= PATH_MAX) {
    return RowError{IssueKind::kImageUnsupported,
                    absl::StrCat("image '", path.substr(0, 64), path.size() > 64 ? "...'" : "'",
                                 " is a URL or inline data; only local files are read (download "
                                 "it and give its path)")};
  }
  const std::string full = path[0] == '/' ? path : JoinPath(context.base_dir, path);
  static const std::vector<std::string>* const kAnywhere = new std::vector<std::string>{"/"};
  const std::vector<std::string>& roots =
      context.allowed_roots != nullptr && context.allowed_roots->has_value()
          ? **context.allowed_roots
          : *kAnywhere;
  StatusOr<std::string> resolved = ResolveUnderRoots(full, roots, /*must_exist=*/false);
  if (!resolved.ok()) {
    return RowError{IssueKind::kImageOutsideRoots,
                    absl::StrCat("image '", path, "': ", resolved.status().message())};
  }
  if (!PathExists(*resolved)) {
    return RowError{IssueKind::kImageMissing,
                    absl::StrCat("image '", path, "' not found (looked for ", *resolved, ")")};
  }
  if (IsDirectory(*resolved)) {
    return RowError{IssueKind::kImageUnreadable, absl::StrCat("image '", path, "' is a directory")};
  }
  out->path = *resolved;
  return std::nullopt;
}

// Splits one text part on "<image>"; returns the number of tags.
size_t SplitTags(const std::string& text, std::vector<ContentPart>* out) {
  size_t tags = 0, start = 0, found;
  while ((found = text.find(kImageTag, start)) != std::string::npos) {
    if (found > start) out->push_back({Part::kText, text.substr(start, found - start)});
    out->push_back({Part::kImage, ""});
    ++tags;
    start = found + kImageTagSize;
  }
  if (start < text.size()) out->push_back({Part::kText, text.substr(start)});
  return tags;
}

}  // namespace

std::optional<RowError> PlaceImageTags(size_t num_images, std::vector<ChatMessage>* messages) {
  size_t tags = 0;
  for (ChatMessage& message : *messages) {
    std::vector<ContentPart> parts;
    for (const ContentPart& part : message.content) {
      const bool has_image = part.type == Part::kImage || absl::StrContains(part.text, kImageTag);
      if (has_image && message.role != "user") {
        return RowError{IssueKind::kImageTags, absl::StrCat("image in a ", message.role,
                                                            " turn; images go in user turns")};
      }
      if (part.type == Part::kImage) parts.push_back(part), ++tags;
      if (part.type == Part::kText) tags += SplitTags(part.text, &parts);
    }
    message.content = std::move(parts);
  }
  if (tags > num_images) {
    return RowError{IssueKind::kImageTags, absl::StrCat(tags, " <image> tags but ", num_images,
                                                        num_images == 1 ? " image" : " images")};
  }
  // SWIFT puts the missing tags in front of the first query.
  for (ChatMessage& message : *messages) {
    if (message.role != "user" || tags == num_images) continue;
    message.content.insert(message.content.begin(), num_images - tags,
                           ContentPart{Part::kImage, ""});
    break;
  }
  return std::nullopt;
}

std::optional<RowError> CheckTurnOrder(const std::vector<ChatMessage>& messages) {
  size_t i = !messages.empty() && messages[0].role == "system" ? 1 : 0;
  if (i == messages.size()) return Bad("no user/assistant turns");
  for (size_t turn = 0; i < messages.size(); ++i, ++turn) {
    const char* expected = turn % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != expected) {
      return Bad(absl::StrCat("turn ", i + 1, " is '", messages[i].role, "', expected '", expected,
                              "' (an optional system turn first, then user and "
                              "assistant alternating)"));
    }
  }
  if (messages.back().role != "assistant") {
    return Bad("the last turn must be the assistant's response");
  }
  return std::nullopt;
}

std::optional<RowError> RowToSample(const json& row, const RowContext& context, Sample* sample) {
  if (!row.is_object()) {
    return Bad(absl::StrCat("a row must be a JSON object (got ", row.type_name(), ")"));
  }
  std::vector<ChatMessage> messages;
  std::vector<std::string> paths, part_paths;
  RETURN_IF_ROW_ERROR(ParseLayout(row, context, &messages, &part_paths));
  RETURN_IF_ROW_ERROR(AddSystem(row, &messages));
  RETURN_IF_ROW_ERROR(CheckTurnOrder(messages));
  RETURN_IF_ROW_ERROR(ReadImagePaths(row, context, &paths));
  if (!part_paths.empty() && !paths.empty()) {
    return Bad("images are given both in \"images\" and inside message content; use one");
  }
  if (!part_paths.empty()) paths = std::move(part_paths);
  RETURN_IF_ROW_ERROR(PlaceImageTags(paths.size(), &messages));
  sample->images.resize(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    RETURN_IF_ROW_ERROR(ResolveImage(paths[i], context, &sample->images[i]));
  }
  sample->file = context.file;
  sample->line = context.line;
  sample->messages = std::move(messages);
  return std::nullopt;
}

}  // namespace vlmd::train_internal
