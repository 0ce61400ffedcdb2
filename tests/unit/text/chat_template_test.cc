#include "core/text/chat_template.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ContentPart Text(const std::string& text) { return {ContentPart::Type::kText, text}; }
ContentPart Image() { return {ContentPart::Type::kImage, ""}; }

std::vector<ChatMessage> DogQuestion() {
  return {{"user", {Image(), Text("What kind of dog is this?")}}};
}

// spec/qwen2vl.md §5.1.
TEST(ChatTemplateTest, RendersSpecExample) {
  EXPECT_EQ(ApplyChatTemplate(DogQuestion(), /*add_generation_prompt=*/true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What kind of dog is "
            "this?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, SystemMessagesAndItems) {
  std::vector<ChatMessage> messages = {
      {"system", {Text("Be brief.")}},
      {"user", {Text("A"), Image(), Text("B"), Image()}},
  };
  EXPECT_EQ(ApplyChatTemplate(messages, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nA<|vision_start|>"
            "<|image_pad|><|vision_end|>B<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n");
  EXPECT_EQ(ApplyChatTemplate({{"user", {Text("hi")}}}, false, ""),
            "<|im_start|>user\nhi<|im_end|>\n");
  EXPECT_EQ(ApplyChatTemplate({}, true, ""), "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, SegmentsMarkAssistantOutput) {
  std::vector<ChatMessage> messages = {
      {"user", {Image(), Text("Formula?")}},
      {"assistant", {Text("\\frac { a } { b }")}},
      {"user", {Text("Again")}},
      {"assistant", {Text("x")}},
  };
  auto segments = ChatTemplateSegments(messages, false);
  std::vector<std::pair<std::string, bool>> got;
  std::string joined;
  for (const auto& segment : segments) {
    got.emplace_back(segment.text, segment.trainable);
    joined += segment.text;
  }
  EXPECT_EQ(joined, ApplyChatTemplate(messages, false));
  EXPECT_THAT(got,
              ElementsAre(std::make_pair(std::string("<|im_start|>system\nYou are a helpful "
                                                     "assistant.<|im_end|>\n<|im_start|>user\n"
                                                     "<|vision_start|><|image_pad|><|vision_end|>"
                                                     "Formula?<|im_end|>\n<|im_start|>assistant\n"),
                                         false),
                          std::make_pair(std::string("\\frac { a } { b }<|im_end|>"), true),
                          std::make_pair(std::string("\n<|im_start|>user\nAgain<|im_end|>\n"
                                                     "<|im_start|>assistant\n"),
                                         false),
                          std::make_pair(std::string("x<|im_end|>"), true),
                          std::make_pair(std::string("\n"), false)));
}

TEST(ChatTemplateTest, SegmentsWithGenerationPromptConcatenate) {
  auto segments = ChatTemplateSegments(DogQuestion(), true);
  std::string joined;
  for (const auto& segment : segments) {
    joined += segment.text;
    EXPECT_FALSE(segment.trainable);
  }
  EXPECT_EQ(joined, ApplyChatTemplate(DogQuestion(), true));
  EXPECT_EQ(segments.size(), 1u);
}

TEST(ExpandImageTokensTest, RepeatsEachPlaceholder) {
  auto expanded = ExpandImageTokens({1, 9, 2, 9, 3}, 9, {2, 3});
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(*expanded, ElementsAre(1, 9, 9, 2, 9, 9, 9, 3));
  EXPECT_THAT(*ExpandImageTokens({1, 2}, 9, {}), ElementsAre(1, 2));
}

TEST(ExpandImageTokensTest, Errors) {
  auto too_few = ExpandImageTokens({1, 9, 2}, 9, {4, 4});
  EXPECT_EQ(too_few.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_few.status().message()), HasSubstr("1 image placeholders"));
  auto too_many = ExpandImageTokens({9, 9}, 9, {4});
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  auto zero = ExpandImageTokens({9}, 9, {0});
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vlmd
