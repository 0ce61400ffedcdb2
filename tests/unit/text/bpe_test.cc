// The tokenizer.json reader and the BPE rules, on small hand-made vocabularies.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/base/file_util.h"
#include "core/text/byte_level.h"
#include "core/text/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A tokenizer.json whose vocabulary is the 256 byte-level characters (id = byte value) followed
// by `extra` tokens (ids 256, 257, ...), with the given merges and no normalizer.
json SmallTokenizer(const std::vector<std::string>& extra, const json& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[std::string(text::ByteLevelMap::Get().CharFor(static_cast<uint8_t>(b)))] = b;
  }
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + static_cast<int>(i);
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

// Merges as [["a", "b"], ...] (a braced list of pairs would make nlohmann build an object).
json Pairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  json out = json::array();
  for (const auto& [left, right] : pairs) out.push_back(json::array({left, right}));
  return out;
}

std::shared_ptr<const Tokenizer> Build(const json& spec) {
  auto tokenizer = Tokenizer::FromJson(spec.dump(), "small.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *tokenizer : nullptr;
}

Status BuildError(const json& spec) {
  return Tokenizer::FromJson(spec.dump(), "bad.json").status();
}

TEST(BpeTest, MergesLowestRankFirst) {
  auto bc_first =
      Build(SmallTokenizer({"ab", "bc", "abc"}, Pairs({{"b", "c"}, {"a", "b"}, {"a", "bc"}})));
  auto ab_first =
      Build(SmallTokenizer({"ab", "bc", "abc"}, Pairs({{"a", "b"}, {"b", "c"}, {"ab", "c"}})));
  auto no_final = Build(SmallTokenizer({"ab", "bc", "abc"}, Pairs({{"b", "c"}, {"a", "b"}})));
  ASSERT_TRUE(bc_first && ab_first && no_final);
  EXPECT_THAT(bc_first->Encode("abc"), ElementsAre(258));
  EXPECT_THAT(ab_first->Encode("abc"), ElementsAre(258));
  EXPECT_THAT(no_final->Encode("abc"), ElementsAre('a', 257));
}

TEST(BpeTest, LeftmostPairWinsTies) {
  auto tokenizer = Build(SmallTokenizer({"aa"}, Pairs({{"a", "a"}})));
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(tokenizer->Encode("aaa"), ElementsAre(256, 'a'));
  EXPECT_THAT(tokenizer->Encode("aaaa"), ElementsAre(256, 256));
}

TEST(BpeTest, StringAndPairMergesAgree) {
  auto pairs = Build(SmallTokenizer({"ab", "abc"}, Pairs({{"a", "b"}, {"ab", "c"}})));
  auto strings =
      Build(SmallTokenizer({"ab", "abc"}, json::array({"#version: 0.2", "a b", "ab c"})));
  ASSERT_TRUE(pairs && strings);
  EXPECT_EQ(pairs->Encode("xabcab"), strings->Encode("xabcab"));
  EXPECT_THAT(strings->Encode("xabcab"), ElementsAre('x', 257, 256));
}

TEST(BpeTest, IgnoreMergesTakesWholeWords) {
  json spec = SmallTokenizer({"abc"}, json::array());
  EXPECT_THAT(Build(spec)->Encode("abc"), ElementsAre('a', 'b', 'c'));
  spec["model"]["ignore_merges"] = true;
  EXPECT_THAT(Build(spec)->Encode("abc"), ElementsAre(256));
}

TEST(BpeTest, ByteLevelRegexAndPrefixSpace) {
  // Byte 0x20 is the byte-level character "Ġ" (U+0120).
  json spec = SmallTokenizer({"\xC4\xA0"
                              "b",
                              "\xC4\xA0"
                              "a"},
                             Pairs({{"\xC4\xA0", "b"}, {"\xC4\xA0", "a"}}));
  EXPECT_THAT(Build(spec)->Encode("a b"), ElementsAre('a', 256));  // one word: (a, Ġb)
  spec["pre_tokenizer"]["use_regex"] = true;
  EXPECT_THAT(Build(spec)->Encode("a b"), ElementsAre('a', 256));  // words "a", " b"
  spec["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_THAT(Build(spec)->Encode("a b"), ElementsAre(257, 256));  // " a", " b"
}

TEST(AddedTokensTest, StripFlagsSwallowWhitespace) {
  json spec = SmallTokenizer({}, json::array());
  spec["added_tokens"] = {
      {{"id", 300}, {"content", "<x>"}, {"special", true}, {"normalized", false}}};
  EXPECT_THAT(Build(spec)->Encode("a  <x>  b"), ElementsAre('a', ' ', ' ', 300, ' ', ' ', 'b'));
  spec["added_tokens"][0]["lstrip"] = true;
  spec["added_tokens"][0]["rstrip"] = true;
  EXPECT_THAT(Build(spec)->Encode("a  <x>  b"), ElementsAre('a', 300, 'b'));
  EXPECT_EQ(Build(spec)->Decode({'a', 300, 'b'}, false), "a<x>b");
  EXPECT_EQ(Build(spec)->Decode({'a', 300, 'b'}, true), "ab");
}

TEST(AddedTokensTest, SingleWordOnlyOutsideWords) {
  json spec = SmallTokenizer({}, json::array());
  spec["added_tokens"] = {{{"id", 300}, {"content", "tok"}, {"single_word", true}}};
  EXPECT_THAT(Build(spec)->Encode("a tok b"), ElementsAre('a', ' ', 300, ' ', 'b'));
  EXPECT_THAT(Build(spec)->Encode("atok"), ElementsAre('a', 't', 'o', 'k'));
  EXPECT_THAT(Build(spec)->Encode("tok_"), ElementsAre('t', 'o', 'k', '_'));
}

TEST(AddedTokensTest, LongestMatchAndNormalizedTokens) {
  json spec = SmallTokenizer({}, json::array());
  spec["normalizer"] = {{"type", "NFC"}};
  spec["added_tokens"] = {
      {{"id", 300}, {"content", "<a>"}, {"normalized", false}},
      {{"id", 301}, {"content", "<a><b>"}, {"normalized", false}},
      {{"id", 302}, {"content", "\xC3\xA9"}, {"normalized", true}},  // é, found after NFC
  };
  auto tokenizer = Build(spec);
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(tokenizer->Encode("<a><b><a>"), ElementsAre(301, 300));
  EXPECT_THAT(tokenizer->Encode("e\xCC\x81!"), ElementsAre(302, '!'));
  // HF runs added tokens through the ByteLevel decoder too: "é" is the byte-level character of
  // byte 0xE9, which alone is invalid UTF-8.
  EXPECT_EQ(tokenizer->Decode({302}, false), "\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer->TokenToId("<a><b>"), 301);
  EXPECT_EQ(tokenizer->IdToToken(300), "<a>");
  EXPECT_EQ(tokenizer->Size(), 303);
}

TEST(TokenizerJsonTest, RefusesUnsupportedPartsNamingTheField) {
  struct Case {
    const char* pointer;
    json value;
    absl::StatusCode code;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"/normalizer", {{"type", "Lowercase"}}, absl::StatusCode::kUnimplemented, "normalizer"},
      {"/decoder", nullptr, absl::StatusCode::kUnimplemented, "decoder"},
      {"/pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Removed"}},
          {{"type", "ByteLevel"}}}}},
       absl::StatusCode::kUnimplemented,
       "pre_tokenizer.pretokenizers[0].behavior"},
      {"/pre_tokenizer",
       {{"type", "Sequence"}, {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Digits"}}}}},
       absl::StatusCode::kUnimplemented,
       "pre_tokenizer.pretokenizers[0]"},
      {"/model/dropout", 0.1, absl::StatusCode::kUnimplemented, "model.dropout"},
      {"/model/byte_fallback", true, absl::StatusCode::kUnimplemented, "model.byte_fallback"},
      {"/model/merges", Pairs({{"a", "zz"}}), absl::StatusCode::kInvalidArgument,
       "model.merges[0]"},
      {"/model/merges", json::array({"a b c"}), absl::StatusCode::kInvalidArgument,
       "model.merges[0]"},
      {"/model/type", "WordPiece", absl::StatusCode::kUnimplemented, "model.type"},
      {"/added_tokens",
       {{{"content", "x"}}},
       absl::StatusCode::kInvalidArgument,
       "added_tokens[0]"},
  };
  for (const Case& c : cases) {
    json spec = SmallTokenizer({}, json::array());
    spec[json::json_pointer(c.pointer)] = c.value;
    Status status = BuildError(spec);
    EXPECT_EQ(status.code(), c.code) << c.pointer << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("bad.json")) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.field)) << status;
  }
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vlmd_tok_XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(LoadTest, CorruptFileErrorNamesTheFile) {
  std::string path = dir_ + "/tokenizer.json";
  ASSERT_TRUE(WriteFileAtomic(path, "{\"model\": {\"vocab\": [1, 2").ok());
  auto loaded = Tokenizer::FromFile(path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(path));
  auto missing = Tokenizer::FromFile(dir_ + "/none.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir_ + "/none.json"));
}

TEST_F(LoadTest, DirectoryThenFallback) {
  std::string fallback = dir_ + "/fallback.json";
  ASSERT_TRUE(WriteFileAtomic(fallback, SmallTokenizer({}, json::array()).dump()).ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/model").ok());
  EXPECT_TRUE(Tokenizer::Load(dir_ + "/model", fallback).ok());
  auto no_fallback = Tokenizer::Load(dir_ + "/model");
  EXPECT_EQ(no_fallback.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_fallback.status().message()), HasSubstr(dir_ + "/model"));
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/model/tokenizer.json", "not json").ok());
  auto own = Tokenizer::Load(dir_ + "/model", fallback);  // the directory's own file wins
  EXPECT_THAT(std::string(own.status().message()), HasSubstr(dir_ + "/model/tokenizer.json"));
  EXPECT_TRUE(Tokenizer::Load(fallback).ok());
}

}  // namespace
}  // namespace vlmd
