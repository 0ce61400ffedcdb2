// Reads tokenizer.json into a TokenizerSpec, refusing every part it does not implement.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/text/bpe_tokenizer.h"
#include "nlohmann/json.hpp"

namespace vlmd::text {
namespace {

using nlohmann::json;

// Error helpers: every message names the file and the JSON field.
class FieldErrors {
 public:
  explicit FieldErrors(const std::string& file) : file_(file) {}
  Status Invalid(absl::string_view field, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer file ", file_, ": ", field, ": ", problem));
  }
  Status Unimplemented(absl::string_view field, absl::string_view problem) const {
    return absl::UnimplementedError(
        absl::StrCat("tokenizer file ", file_, ": ", field, ": ", problem));
  }
  const std::string& file() const { return file_; }

 private:
  const std::string& file_;
};

std::string TypeOf(const json& node) {
  auto it = node.find("type");
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

Status ParseNormalizer(const json& node, const std::string& field, const FieldErrors& errors,
                       std::vector<NormalForm>* forms) {
  if (node.is_null()) return absl::OkStatus();
  if (!node.is_object()) return errors.Invalid(field, "expected an object or null");
  std::string type = TypeOf(node);
  if (type == "NFC")
    forms->push_back(NormalForm::kNFC);
  else if (type == "NFD")
    forms->push_back(NormalForm::kNFD);
  else if (type == "NFKC")
    forms->push_back(NormalForm::kNFKC);
  else if (type == "NFKD")
    forms->push_back(NormalForm::kNFKD);
  else if (type == "Sequence" && node.contains("normalizers") && node["normalizers"].is_array()) {
    const json& list = node["normalizers"];
    for (size_t i = 0; i < list.size(); ++i) {
      RETURN_IF_ERROR(
          ParseNormalizer(list[i], absl::StrCat(field, ".normalizers[", i, "]"), errors, forms));
    }
  } else {
    return errors.Unimplemented(field, absl::StrCat("normalizer type \"", type, "\""));
  }
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<OnigRegex>> ParseSplit(const json& node, const std::string& field,
                                                const FieldErrors& errors) {
  if (node.value("behavior", "") != "Isolated") {
    return errors.Unimplemented(field + ".behavior", "only \"Isolated\" is supported");
  }
  if (node.value("invert", false)) return errors.Unimplemented(field + ".invert", "must be false");
  const json& pattern = node.contains("pattern") ? node["pattern"] : json();
  bool literal = pattern.contains("String");
  const char* key = literal ? "String" : "Regex";
  if (!pattern.is_object() || !pattern.contains(key) || !pattern[key].is_string()) {
    return errors.Invalid(field + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  auto regex = OnigRegex::Compile(pattern[key].get<std::string>(), literal);
  if (!regex.ok()) {
    return Status(regex.status().code(), absl::StrCat("tokenizer file ", errors.file(), ": ", field,
                                                      ".pattern: ", regex.status().message()));
  }
  return regex;
}

Status ParseByteLevel(const json& node, const std::string& field, const FieldErrors& errors,
                      PreTokenizerSpec* spec) {
  spec->add_prefix_space = node.value("add_prefix_space", true);
  if (!node.value("use_regex", true)) return absl::OkStatus();
  // GPT-2's pattern, which HF's ByteLevel pre-tokenizer uses when use_regex is true.
  constexpr char kGpt2[] =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  auto regex = OnigRegex::Compile(kGpt2, /*literal=*/false);
  if (!regex.ok()) return errors.Invalid(field, regex.status().message());
  spec->byte_level_regex = *std::move(regex);
  return absl::OkStatus();
}

Status ParsePreTokenizer(const json& node, const FieldErrors& errors, PreTokenizerSpec* spec) {
  const std::string field = "pre_tokenizer";
  std::vector<const json*> steps;
  bool sequence = TypeOf(node) == "Sequence";
  if (sequence && node.contains("pretokenizers") && node["pretokenizers"].is_array()) {
    for (const json& step : node["pretokenizers"]) steps.push_back(&step);
  } else if (node.is_object() && !sequence) {
    steps.push_back(&node);
  }
  if (steps.empty()) return errors.Unimplemented(field, "a ByteLevel pre-tokenizer is required");
  for (size_t i = 0; i < steps.size(); ++i) {
    std::string step_field = sequence ? absl::StrCat(field, ".pretokenizers[", i, "]") : field;
    std::string type = TypeOf(*steps[i]);
    bool last = i + 1 == steps.size();
    if (type == "Split" && !last) {
      ASSIGN_OR_RETURN(auto regex, ParseSplit(*steps[i], step_field, errors));
      spec->splits.push_back(std::move(regex));
    } else if (type == "ByteLevel" && last) {
      RETURN_IF_ERROR(ParseByteLevel(*steps[i], step_field, errors, spec));
    } else {
      return errors.Unimplemented(step_field, absl::StrCat("\"", type,
                                                           "\" here (supported: Split steps, then "
                                                           "one final ByteLevel)"));
    }
  }
  return absl::OkStatus();
}

Status ParseAddedTokens(const json& node, const FieldErrors& errors,
                        std::vector<AddedToken>* tokens) {
  if (node.is_null()) return absl::OkStatus();
  if (!node.is_array()) return errors.Invalid("added_tokens", "expected an array");
  for (size_t i = 0; i < node.size(); ++i) {
    const json& entry = node[i];
    std::string field = absl::StrCat("added_tokens[", i, "]");
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
        entry["id"].get<int64_t>() < 0 || entry["id"].get<int64_t>() >= INT32_MAX ||
        !entry.contains("content") || !entry["content"].is_string()) {
      return errors.Invalid(field, "expected {\"id\": <int >= 0>, \"content\": <string>, ...}");
    }
    AddedToken token;
    token.id = entry["id"].get<int32_t>();
    token.content = entry["content"].get<std::string>();
    token.special = entry.value("special", false);
    token.single_word = entry.value("single_word", false);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    token.normalized = entry.value("normalized", !token.special);
    tokens->push_back(std::move(token));
  }
  return absl::OkStatus();
}

Status CheckDecoder(const json& node, const FieldErrors& errors) {
  if (TypeOf(node) != "ByteLevel") {
    return errors.Unimplemented("decoder", "only the ByteLevel decoder is supported");
  }
  return absl::OkStatus();
}

StatusOr<TokenizerSpec> ParseSpec(const json& root, const FieldErrors& errors) {
  if (!root.is_object()) return errors.Invalid("(top level)", "expected a JSON object");
  for (const char* required : {"model", "pre_tokenizer", "decoder"}) {
    if (!root.contains(required)) return errors.Invalid(required, "missing");
  }
  TokenizerSpec spec;
  RETURN_IF_ERROR(
      ParseNormalizer(root.value("normalizer", json()), "normalizer", errors, &spec.normalizers));
  RETURN_IF_ERROR(ParsePreTokenizer(root["pre_tokenizer"], errors, &spec.pre_tokenizer));
  RETURN_IF_ERROR(CheckDecoder(root["decoder"], errors));
  RETURN_IF_ERROR(ParseAddedTokens(root.value("added_tokens", json()), errors, &spec.added_tokens));
  ASSIGN_OR_RETURN(spec.model, BpeModel::FromJson(root["model"], errors.file()));
  return spec;
}

}  // namespace

StatusOr<std::shared_ptr<const Tokenizer>> ParseTokenizerJson(std::string_view contents,
                                                              const std::string& source_name) {
  FieldErrors errors(source_name);
  // nlohmann reports parse and type errors as exceptions; they stop here.
  try {
    json root = json::parse(contents);
    ASSIGN_OR_RETURN(TokenizerSpec spec, ParseSpec(root, errors));
    return std::shared_ptr<const Tokenizer>(std::make_shared<BpeTokenizer>(std::move(spec)));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer file ", source_name, ": malformed JSON: ", e.what()));
  }
}

}  // namespace vlmd::text
