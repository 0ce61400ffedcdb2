// Parity with reference tokenizers. tests/fixtures/tokenizer/ holds
//   cases.json                — Hugging Face `tokenizers` (tests/reference/make_fixtures.py):
//                               {"cases": [...], "template_cases": [...], ...}
//   cases_transformersjs.json — transformers.js (tests/reference/make_tokenizer_cases.mjs): [...]
// A case is {text, ids, decoded, [decoded_skip], [prefix_decoded]}; a template case is
// {messages, add_generation_prompt, text, images, ids}.
#include <algorithm>
#include <string>
#include <vector>

#include "core/base/file_util.h"
#include "core/text/chat_template.h"
#include "core/text/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/text/real_tokenizer.h"

namespace vlmd {
namespace {

using nlohmann::json;

constexpr int32_t kImagePad = 151655;

std::string Escaped(const std::string& text) { return json(text).dump(); }

std::string IdList(const std::vector<int32_t>& ids) { return json(ids).dump(); }

json ReadFixture(const std::string& name) {
  std::string path = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
  auto contents = ReadFile(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  return contents.ok() ? json::parse(*contents) : json();
}

// Checks one case; returns the number of mismatches found (each also reported).
int CheckCase(const Tokenizer& tokenizer, const json& c) {
  const std::string text = c.at("text").get<std::string>();
  const std::vector<int32_t> ids = c.at("ids").get<std::vector<int32_t>>();
  int failures = 0;
  std::vector<int32_t> encoded = tokenizer.Encode(text);
  if (encoded != ids) {
    ADD_FAILURE() << "Encode(" << Escaped(text) << ")\n  got      " << IdList(encoded)
                  << "\n  expected " << IdList(ids);
    ++failures;
  }
  auto check_decode = [&](const std::vector<int32_t>& input, bool skip, const json& expected) {
    std::string decoded = tokenizer.Decode(input, skip);
    if (decoded == expected.get<std::string>()) return;
    ADD_FAILURE() << "Decode(" << IdList(input) << ", skip_special=" << skip << ") of "
                  << Escaped(text) << "\n  got      " << Escaped(decoded) << "\n  expected "
                  << expected.dump();
    ++failures;
  };
  check_decode(ids, false, c.at("decoded"));
  for (const char* key : {"decoded_skip", "decoded_skip_special"}) {
    if (c.contains(key)) check_decode(ids, true, c[key]);
  }
  if (c.contains("prefix_decoded")) {
    const json& prefixes = c["prefix_decoded"];
    for (size_t k = 0; k < prefixes.size(); ++k) {
      check_decode(std::vector<int32_t>(ids.begin(), ids.begin() + k + 1), false, prefixes[k]);
    }
  }
  return failures;
}

// Messages in the Hugging Face chat format: content is a string or a list of typed items.
std::vector<ChatMessage> ToMessages(const json& messages) {
  std::vector<ChatMessage> out;
  for (const json& m : messages) {
    ChatMessage message{m.at("role").get<std::string>(), {}};
    const json& content = m.at("content");
    if (content.is_string()) {
      message.content.push_back({ContentPart::Type::kText, content.get<std::string>()});
    }
    for (const json& item : content.is_array() ? content : json::array()) {
      bool image =
          item.value("type", "") == "image" || item.contains("image") || item.contains("image_url");
      message.content.push_back(
          image ? ContentPart{ContentPart::Type::kImage, ""}
                : ContentPart{ContentPart::Type::kText, item.at("text").get<std::string>()});
    }
    out.push_back(std::move(message));
  }
  return out;
}

void CheckTemplateCase(const Tokenizer& tokenizer, const json& c) {
  std::string text =
      ApplyChatTemplate(ToMessages(c.at("messages")), c.value("add_generation_prompt", false));
  EXPECT_EQ(text, c.at("text").get<std::string>());
  std::vector<int32_t> ids = tokenizer.Encode(text);
  EXPECT_EQ(IdList(ids), c.at("ids").dump()) << Escaped(text);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kImagePad), c.at("images").size());
}

void CheckFixture(const std::string& name) {
  auto tokenizer = RealTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  json fixture = ReadFixture(name);
  const json& cases = fixture.is_array() ? fixture : fixture.value("cases", json());
  ASSERT_TRUE(cases.is_array() && !cases.empty()) << name << " has no cases";
  int failing_cases = 0;
  for (const json& c : cases) failing_cases += CheckCase(*tokenizer, c) > 0;
  EXPECT_EQ(failing_cases, 0) << "of " << cases.size() << " cases in " << name;
  if (fixture.is_object() && fixture.contains("template_cases")) {
    for (const json& c : fixture["template_cases"]) CheckTemplateCase(*tokenizer, c);
  }
}

TEST(TokenizerParityTest, MatchesHuggingFaceTokenizers) { CheckFixture("cases.json"); }

TEST(TokenizerParityTest, MatchesTransformersJs) { CheckFixture("cases_transformersjs.json"); }

}  // namespace
}  // namespace vlmd
