#include "core/io/model_config.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

// The original release's flat 2B config (spec §1.2 layout 1).
constexpr char kFlat2B[] = R"({
  "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
  "vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960,
  "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true,
  "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
  "bos_token_id": 151643, "eos_token_id": 151645, "image_token_id": 151655,
  "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16,
                    "in_chans": 3, "hidden_size": 1536, "patch_size": 14,
                    "spatial_merge_size": 2, "spatial_patch_size": 14, "temporal_patch_size": 2}
})";

TEST(ModelConfig, FlatOriginalRelease) {
  auto c = ModelConfig::FromJson(kFlat2B, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.hidden_size, 1536);
  EXPECT_EQ(c->text.head_dim(), 128);
  EXPECT_EQ(c->text.mrope_section, (std::vector<int>{16, 24, 24}));
  EXPECT_TRUE(c->text.tie_word_embeddings);
  EXPECT_EQ(c->vision.mlp_hidden(), 5120);
  EXPECT_EQ(c->vision.patch_dim(), 1176);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{151645}));
}

TEST(ModelConfig, StrippedVisionConfigFilledFromDefaults) {
  // 4.45-4.49 re-saves keep only non-default vision keys (spec §1.2 layout 2); 7B shape.
  auto c = ModelConfig::FromJson(R"({
    "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": false,
    "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
    "vision_config": {"in_chans": 3, "model_type": "qwen2_vl", "spatial_patch_size": 14}})",
                                 "7b/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vision.depth, 32);
  EXPECT_EQ(c->vision.embed_dim, 1280);
  EXPECT_EQ(c->vision.hidden_size, 3584);
  EXPECT_FALSE(c->text.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->text.rope_theta, 1e6);
}

TEST(ModelConfig, NestedFiveXLayoutWithRopeParameters) {
  auto c = ModelConfig::FromJson(R"({
    "model_type": "qwen2_vl", "image_token_id": 5, "vision_start_token_id": 6,
    "vision_end_token_id": 7, "tie_word_embeddings": true,
    "text_config": {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 96,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
      "rms_norm_eps": 1e-6, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
      "mrope_section": [2, 3, 3]}},
    "vision_config": {"depth": 1, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2,
                      "hidden_size": 64}})",
                                 "nested.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->text.rope_theta, 10000.0);
  EXPECT_EQ(c->text.mrope_section, (std::vector<int>{2, 3, 3}));
  EXPECT_EQ(c->image_token_id, 5);
}

TEST(ModelConfig, ErrorsNameFileAndProblem) {
  auto missing = ModelConfig::FromJson(R"({"hidden_size": 64})", "m/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("m/config.json"), std::string::npos);
  EXPECT_NE(std::string(missing.status().message()).find("vocab_size"), std::string::npos);
  std::string bad_section = kFlat2B;
  bad_section.replace(bad_section.find("[16, 24, 24]"), 12, "[16, 24, 20]");
  auto s = ModelConfig::FromJson(bad_section, "c.json");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("mrope_section"), std::string::npos);
  EXPECT_FALSE(ModelConfig::FromJson("[1,2]", "c.json").ok());
}

TEST(ModelConfig, ToJsonRoundTrips) {
  auto c = ModelConfig::FromJson(kFlat2B, "config.json");
  ASSERT_TRUE(c.ok());
  auto again = ModelConfig::FromJson(c->ToJson(), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->text.num_key_value_heads, 2);
  EXPECT_EQ(again->vision.embed_dim, 1280);
}

TEST(PreprocessorConfig, MinMaxPixelsOverrideSize) {
  auto p = PreprocessorConfig::FromJson(
      R"({"min_pixels": 3136, "max_pixels": 12845056, "size": {"shortest_edge": 1,
          "longest_edge": 2}, "image_mean": [0.5, 0.5, 0.5]})", "pre.json");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_pixels, 12845056);
  EXPECT_FLOAT_EQ(p->image_mean[1], 0.5f);
}

// Found by tests/fuzz/config_fuzzer.cc: a non-number in image_mean threw nlohmann's
// type_error out of FromJson (a server loading such a model died on the exception).
TEST(PreprocessorConfig, NonNumericMeanIsAnError) {
  auto p = PreprocessorConfig::FromJson(
      R"({"image_mean":["a","b","c"],"min_pixels":1,"max_pixels":2})", "pre.json");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(p.status().message()).find("image_mean"), std::string::npos);
}

// Found by the config fuzzer: patch_size 0 was accepted (smart_resize divides by it).
TEST(PreprocessorConfig, ZeroPatchGeometryIsAnError) {
  for (const char* key : {"patch_size", "merge_size", "temporal_patch_size"}) {
    auto p = PreprocessorConfig::FromJson(absl::StrCat("{\"", key, "\": 0}"), "pre.json");
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << key;
  }
}

// Found with the config fuzzer's seeds: integers that do not fit the field were wrapped
// silently (hidden_size 4294967360 became 64), and huge mrope sections overflowed an int sum.
TEST(ModelConfig, OutOfRangeIntegersAreErrors) {
  std::string wide = kFlat2B;
  wide.replace(wide.find("\"hidden_size\": 1536"), 19, "\"hidden_size\": 4294968832");
  auto c = ModelConfig::FromJson(wide, "config.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(c.status().message()).find("out of range"), std::string::npos)
      << c.status();
  std::string section = kFlat2B;
  section.replace(section.find("[16, 24, 24]"), 12, "[2147483647, 2147483647, 4]");
  auto s = ModelConfig::FromJson(section, "config.json");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.status().message()).find("mrope_section"), std::string::npos);
  auto eos = GenerationConfig::FromJson(R"({"eos_token_id": [-1]})", "generation_config.json");
  EXPECT_EQ(eos.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GenerationConfig, EosListAndSampling) {
  auto g = GenerationConfig::FromJson(
      R"({"eos_token_id": [151645, 151643], "do_sample": true, "top_k": 1,
          "temperature": 0.01, "top_p": 0.001, "repetition_penalty": 1.05})", "gen.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->eos_token_ids.size(), 2u);
  EXPECT_EQ(*g->top_k, 1);
  EXPECT_DOUBLE_EQ(*g->repetition_penalty, 1.05);
}

}  // namespace
}  // namespace vlmd
