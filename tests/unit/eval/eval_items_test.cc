// Evaluation items from samples, scoring over a set, results lines and the ordered results file.
#include "core/eval/eval_items.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/eval/results_file.h"
#include "nlohmann/json.hpp"

namespace vlmd::eval {
namespace {

ChatMessage Text(const std::string& role, const std::string& text) {
  return {role, {{ContentPart::Type::kText, text}}};
}

Sample MultiTurn() {
  Sample s;
  s.file = "/d/data.jsonl";
  s.line = 3;
  s.messages = {Text("system", "sys"),
                Text("user", "q1"),
                Text("assistant", "a1"),
                {"user", {{ContentPart::Type::kImage, ""}, {ContentPart::Type::kText, "q2"}}},
                Text("assistant", "final answer")};
  s.images = {{"/d/img.png", ""}};
  return s;
}

TEST(EvalItemTest, LastAssistantTurnIsTheReference) {
  auto item = MakeEvalItem(MultiTurn());
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(item->source, "/d/data.jsonl:3");
  EXPECT_EQ(item->reference, "final answer");
  EXPECT_EQ(item->query, "<image>q2");
  ASSERT_EQ(item->prompt.size(), 4u);  // system, user, assistant, user
  EXPECT_EQ(item->prompt.back().role, "user");
  ASSERT_EQ(item->images.size(), 1u);
  PromptInput input = ToPromptInput(*item, 3136, 50176);
  EXPECT_TRUE(input.add_generation_prompt);
  EXPECT_EQ(input.messages.size(), 4u);
  EXPECT_EQ(*input.max_pixels, 50176);
}

TEST(EvalItemTest, RefusesASampleWithoutFinalAnswer) {
  Sample s = MultiTurn();
  s.messages.pop_back();
  auto item = MakeEvalItem(s);
  EXPECT_EQ(item.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(item.status().message()).find("/d/data.jsonl:3"), std::string::npos);
}

TEST(ScoreTest, SampleAndSet) {
  EvalItem a{"f:1", "q", "x ^ { 2 }", {}, {}};
  EvalItem b{"f:2", "q", "a b c d", {}, {}};
  api::EvalSampleResult ra = ScoreSample(a, " x ^ { 2 }\n");
  EXPECT_TRUE(ra.exact_match);
  EXPECT_DOUBLE_EQ(ra.edit_distance_char, 1.0);
  EXPECT_DOUBLE_EQ(ra.bleu, 1.0);
  api::EvalSampleResult rb = ScoreSample(b, "a b c");
  EXPECT_FALSE(rb.exact_match);
  EXPECT_DOUBLE_EQ(rb.edit_distance_token, 0.75);
  EXPECT_DOUBLE_EQ(rb.edit_distance_char, 1.0 - 2.0 / 7.0);
  ScoreAccumulator acc;
  acc.Add(ra);
  acc.Add(rb);
  api::EvalSummary s;
  acc.Fill(&s);
  EXPECT_EQ(s.samples, 2);
  EXPECT_DOUBLE_EQ(s.exact_match, 0.5);
  EXPECT_DOUBLE_EQ(s.edit_distance_token, (1.0 + 0.75) / 2);
  // Corpus: p1 = 8/8, p2 = 6/6 (4 + 2), p3 = 4/4 (3 + 1), p4 = 2/2; c = 8 < r = 9.
  EXPECT_NEAR(s.bleu, std::exp(1.0 - 9.0 / 8.0), 1e-12);
  auto metrics = acc.Metrics();
  EXPECT_EQ(metrics.size(), 4u);
  EXPECT_DOUBLE_EQ(metrics["edit_distance"], s.edit_distance_char);
  EXPECT_DOUBLE_EQ(metrics["bleu"], s.bleu);
}

TEST(ResultLineTest, SwiftLikeFields) {
  api::EvalSampleResult r = ScoreSample({"f:1", "<image>q", "ref", {}, {}}, "pred\xff");
  r.finish_reason = "length";
  r.completion_tokens = 7;
  auto j = nlohmann::json::parse(ResultLine(r));
  EXPECT_EQ(j["source"], "f:1");
  EXPECT_EQ(j["query"], "<image>q");
  EXPECT_EQ(j["reference"], "ref");
  EXPECT_EQ(j["prediction"], "pred\xef\xbf\xbd");  // ill-formed UTF-8 replaced, line stays JSON
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["completion_tokens"], 7);
  EXPECT_FALSE(j.contains("error"));
  api::EvalSummary s;
  s.eval_loss = 1.5;
  auto summary = nlohmann::json::parse(SummaryJson(s, {{"model", "tiny"}}));
  EXPECT_EQ(summary["eval_loss"], 1.5);
  EXPECT_TRUE(summary["eval_acc"].is_null());
  EXPECT_EQ(summary["model"], "tiny");
}

TEST(OrderedResultsFileTest, WritesInIndexOrder) {
  char tmpl[] = "/tmp/vlmd_results_XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/results.jsonl";
  auto file = OrderedResultsFile::Create(path);
  ASSERT_TRUE(file.ok()) << file.status();
  (*file)->Put(2, "c");
  (*file)->Put(0, "a");
  std::ifstream partial(path);
  std::stringstream first;
  first << partial.rdbuf();
  EXPECT_EQ(first.str(), "a\n");  // 2 waits for 1
  (*file)->Put(1, "b");
  EXPECT_TRUE((*file)->Close().ok());
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  EXPECT_EQ(all.str(), "a\nb\nc\n");
  EXPECT_EQ(OrderedResultsFile::Create(dir + "/no/such/dir/x").status().code(),
            absl::StatusCode::kInternal);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vlmd::eval
