#include "core/train/example.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "tests/unit/text/real_tokenizer.h"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

constexpr int32_t kImEnd = 151645;
constexpr int32_t kImagePad = 151655;
constexpr int32_t kI = kIgnoreLabel;

ExampleOptions Options() {
  StatusOr<ExampleOptions> options = MakeExampleOptions(
      ModelConfig(), PreprocessorConfig(), RealTokenizer(), std::nullopt, std::nullopt);
  EXPECT_TRUE(options.ok()) << options.status();
  return *options;
}

ChatMessage Text(const std::string& role, const std::string& text) {
  return {role, {{ContentPart::Type::kText, text}}};
}

Sample QuerySample(const std::string& query, const std::string& response) {
  Sample s;
  s.file = "t.jsonl";
  s.line = 7;
  s.messages = {Text("user", query), Text("assistant", response)};
  return s;
}

TEST(ExampleTest, ExactIdsAndLabelsForOneTurn) {
  if (RealTokenizer() == nullptr) return;
  StatusOr<TokenizedExample> ex = BuildExample(QuerySample("What is 2+2?", "4"), Options());
  ASSERT_TRUE(ex.ok()) << ex.status();
  // <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is
  // 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n  (prompt ids from HF, spec §5.1)
  const std::vector<int32_t> expected_ids = {
      151644, 8948,   198, 2610,   525,   264, 10950, 17847,  13, 151645,
      198,    151644, 872, 198,    3838,  374, 220,   17,     10, 17,
      30,     151645, 198, 151644, 77091, 198, 19,    151645, 198};
  EXPECT_EQ(ex->ids, expected_ids);
  std::vector<int32_t> expected_labels(expected_ids.size(), kI);
  expected_labels[26] = 19;      // the response
  expected_labels[27] = kImEnd;  // and the <|im_end|> that ends it; the "\n" after it is not
  EXPECT_EQ(ex->labels, expected_labels);
  EXPECT_TRUE(ex->images.empty());
  EXPECT_EQ(ex->image_tokens, 0);
}

TEST(ExampleTest, EveryAssistantTurnIsTrainedOnNothingElse) {
  if (RealTokenizer() == nullptr) return;
  Sample s;
  s.messages = {Text("system", "Be terse."), Text("user", "Hi"), Text("assistant", "Hello there"),
                Text("user", "Bye"), Text("assistant", "Goodbye")};
  StatusOr<TokenizedExample> ex = BuildExample(s, Options());
  ASSERT_TRUE(ex.ok()) << ex.status();
  ASSERT_EQ(ex->ids.size(), ex->labels.size());
  std::vector<int32_t> trained;
  for (int32_t label : ex->labels) {
    if (label != kI) trained.push_back(label);
  }
  const Tokenizer& tok = *RealTokenizer();
  std::vector<int32_t> expected = tok.Encode("Hello there<|im_end|>");
  const std::vector<int32_t> second = tok.Encode("Goodbye<|im_end|>");
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(trained, expected);
  // Where a label is set it equals the id at that position.
  for (size_t i = 0; i < ex->ids.size(); ++i) {
    if (ex->labels[i] != kI) {
      EXPECT_EQ(ex->labels[i], ex->ids[i]) << i;
    }
  }
  // A system turn of its own replaces the default one.
  EXPECT_EQ(tok.Decode(ex->ids, false).rfind("<|im_start|>system\nBe terse.<|im_end|>", 0), 0u);
  EXPECT_EQ(std::count(ex->ids.begin(), ex->ids.end(), kImEnd), 5);
}

TEST(ExampleTest, ImagePlaceholdersExpandToTheImagesTokens) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  Sample s = QuerySample("", "x^2");
  s.messages[0].content = {{ContentPart::Type::kImage, ""}, {ContentPart::Type::kText, "Formula?"}};
  // 56x28 is 1568 pixels: smart_resize scales it up to 84x56 (min_pixels 3136), i.e. 3x2
  // merged patches = 6 tokens.
  s.images = {{dir.WritePng("f.png", 56, 28), ""}};
  const ExampleOptions options = Options();
  StatusOr<TokenizedExample> ex = BuildExample(s, options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(ex->image_tokens, 6);
  ASSERT_EQ(ex->images.size(), 1u);
  EXPECT_EQ(ex->images[0].grid_h, 4);  // 56 / 14
  EXPECT_EQ(ex->images[0].grid_w, 6);  // 84 / 14
  EXPECT_EQ(std::count(ex->ids.begin(), ex->ids.end(), kImagePad), 6);
  EXPECT_EQ(*ImageTokenCount(28, 56, options.preprocess), 6);
  // The run sits between <|vision_start|> and <|vision_end|>, unlabelled.
  auto first = std::find(ex->ids.begin(), ex->ids.end(), kImagePad) - ex->ids.begin();
  EXPECT_EQ(ex->ids[first - 1], 151652);
  EXPECT_EQ(ex->ids[first + 6], 151653);
  for (int k = 0; k < 6; ++k) EXPECT_EQ(ex->labels[first + k], kI);
  StatusOr<TemplateTokens> text = TokenizeTemplate(s, options);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(ex->ids.size(), text->ids.size() - 1 + 6);
}

TEST(ExampleTest, PixelLimitsOfTheJobApply) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  Sample s = QuerySample("", "x");
  s.messages[0].content = {{ContentPart::Type::kImage, ""}};
  s.images = {{dir.WritePng("big.png", 560, 280), ""}};
  StatusOr<ExampleOptions> small = MakeExampleOptions(ModelConfig(), PreprocessorConfig(),
                                                      RealTokenizer(), std::nullopt, 56 * 56 * 4);
  ASSERT_TRUE(small.ok());
  StatusOr<TokenizedExample> ex = BuildExample(s, *small);
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(ex->image_tokens, *ImageTokenCount(280, 560, small->preprocess));
  EXPECT_LE(ex->image_tokens * 28 * 28, 56 * 56 * 4);
  EXPECT_EQ(MakeExampleOptions(ModelConfig(), PreprocessorConfig(), RealTokenizer(), 5000, 4000)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ExampleTest, ErrorsNameTheSample) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  Sample spelled = QuerySample("look: <|image_pad|>", "x");
  StatusOr<TokenizedExample> ex = BuildExample(spelled, Options());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ex.status().message().rfind("t.jsonl:7: ", 0), 0u) << ex.status();

  Sample corrupt = QuerySample("", "x");
  corrupt.messages[0].content = {{ContentPart::Type::kImage, ""}};
  corrupt.images = {{dir.Write("bad.png", "\x89PNG\r\n\x1a\n garbage"), ""}};
  ex = BuildExample(corrupt, Options());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ex.status().message().rfind("t.jsonl:7: ", 0), 0u) << ex.status();
  EXPECT_NE(ex.status().message().find("bad.png"), absl::string_view::npos) << ex.status();
}

}  // namespace
}  // namespace vlmd
