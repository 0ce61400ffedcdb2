// Parity with a reference tokenizer: tests/fixtures/tokenizer/cases.json holds, for each corpus
// string, the ids and decodings a reference implementation produced (see
// tests/reference/make_tokenizer_cases.mjs for the fields).
#include <string>
#include <vector>

#include "core/base/file_util.h"
#include "core/text/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/text/real_tokenizer.h"

namespace vlmd {
namespace {

using nlohmann::json;

std::string Escaped(const std::string& text) { return json(text).dump(); }

std::string IdList(const std::vector<int32_t>& ids) { return json(ids).dump(); }

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
  if (c.contains("decoded_skip_special")) check_decode(ids, true, c["decoded_skip_special"]);
  if (c.contains("prefix_decoded")) {
    const json& prefixes = c["prefix_decoded"];
    for (size_t k = 0; k < prefixes.size(); ++k) {
      check_decode(std::vector<int32_t>(ids.begin(), ids.begin() + k + 1), false, prefixes[k]);
    }
  }
  return failures;
}

TEST(TokenizerParityTest, MatchesReferenceCases) {
  auto tokenizer = RealTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  std::string path = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/tokenizer/cases.json";
  auto contents = ReadFile(path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  json cases = json::parse(*contents);
  ASSERT_TRUE(cases.is_array()) << path;
  ASSERT_FALSE(cases.empty()) << path;
  int failing_cases = 0;
  for (const json& c : cases) failing_cases += CheckCase(*tokenizer, c) > 0;
  EXPECT_EQ(failing_cases, 0) << "of " << cases.size() << " cases in " << path;
}

}  // namespace
}  // namespace vlmd
