#include "core/train/job_spec.h"

#include "gtest/gtest.h"

namespace vlmd {
namespace {

TEST(JobSpec, SwiftDefaults) {
  JobSpec s;
  EXPECT_EQ(s.lora_rank, 8);
  EXPECT_DOUBLE_EQ(s.lora_alpha, 32);
  EXPECT_DOUBLE_EQ(s.lora_dropout, 0.05);
  EXPECT_DOUBLE_EQ(s.learning_rate, 1e-4);
  EXPECT_DOUBLE_EQ(s.weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(s.adam_beta2, 0.95);
  EXPECT_DOUBLE_EQ(s.split_ratio, 0.01);
  EXPECT_EQ(s.eval_steps, 50);
  EXPECT_EQ(s.save_total_limit, 2);
  EXPECT_EQ(s.EffectiveAccumulation(1), 16);
  s.batch_size = 3;
  EXPECT_EQ(s.EffectiveAccumulation(2), 3);  // ceil(16 / 3 / 2)
}

TEST(JobSpec, JsonRoundTripAndSingleStringDataset) {
  auto s = JobSpec::FromJson(R"({"model": "/m", "dataset": "/d/train.jsonl", "lora_rank": 16,
                                 "max_pixels": 602112, "target_modules": ["ALL"]})",
                             "job.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->datasets, (std::vector<std::string>{"/d/train.jsonl"}));
  EXPECT_EQ(*s->max_pixels, 602112);
  auto again = JobSpec::FromJson(s->ToJson(), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->lora_rank, 16);
  EXPECT_FALSE(again->min_pixels.has_value());
  EXPECT_TRUE(again->Validate().ok());
}

// Found by tests/fuzz/job_spec_fuzzer.cc: "batch_size": 1e300 was converted to int
// (undefined behaviour), 2.5 and true were accepted as integers, and 2^40 wrapped.
TEST(JobSpec, NumbersMustFitTheirField) {
  struct Case {
    const char* json;
    const char* message;
  };
  for (const Case& c : {Case{R"({"batch_size": 1e300})", "batch_size\" has the wrong type"},
                        Case{R"({"lora_rank": 2.5})", "lora_rank\" has the wrong type"},
                        Case{R"({"gpus": true})", "gpus\" has the wrong type"},
                        Case{R"({"shuffle": 1})", "shuffle\" has the wrong type"},
                        Case{R"({"lora_rank": 1099511627776})", "lora_rank\" is out of range"},
                        Case{R"({"max_steps": 18446744073709551615})", "max_steps\" is out of range"},
                        Case{R"({"gradient_accumulation_steps": 2147483648})", "out of range"}}) {
    auto s = JobSpec::FromJson(c.json, "job.json");
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(std::string(s.status().message()).find(c.message), std::string::npos)
        << c.json << ": " << s.status();
  }
  auto ok = JobSpec::FromJson(R"({"lora_alpha": 16, "max_length": -9223372036854775808})", "j");
  ASSERT_TRUE(ok.ok()) << ok.status();  // an integer is a fine double; Validate() judges ranges
  EXPECT_EQ(ok->lora_alpha, 16);
  EXPECT_FALSE(ok->Validate().ok());
}

TEST(JobSpec, ErrorsNameTheField) {
  auto unknown = JobSpec::FromJson(R"({"model": "/m", "lora_rnak": 4})", "job.json");
  EXPECT_NE(std::string(unknown.status().message()).find("lora_rnak"), std::string::npos);
  auto type = JobSpec::FromJson(R"({"lora_rank": "eight"})", "job.json");
  EXPECT_NE(std::string(type.status().message()).find("lora_rank"), std::string::npos);
  auto version = JobSpec::FromJson(R"({"version": 99})", "job.json");
  EXPECT_EQ(version.status().code(), absl::StatusCode::kFailedPrecondition);
  JobSpec s;
  s.model = "/m";
  s.datasets = {"d"};
  s.learning_rate = 0;
  EXPECT_NE(std::string(s.Validate().message()).find("learning_rate"), std::string::npos);
  s.learning_rate = 1e-4;
  s.min_pixels = 100;
  s.max_pixels = 50;
  EXPECT_NE(std::string(s.Validate().message()).find("min_pixels"), std::string::npos);
}

TEST(JobSpec, VersionOneReadsWithGenerationEvalOff) {
  auto s = JobSpec::FromJson(R"({"version": 1, "model": "/m", "dataset": "d.jsonl"})", "job.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->version, kJobSpecVersion);
  EXPECT_FALSE(s->predict_with_generate);
  EXPECT_FALSE(s->GenerationAt(/*final=*/true));
  EXPECT_EQ(s->generation_eval, "every_eval");
  EXPECT_EQ(s->generation_max_samples, 0);
  EXPECT_FALSE(s->greater_is_better.has_value());
  auto again = JobSpec::FromJson(s->ToJson(), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->greater_is_better.has_value());
  EXPECT_EQ(JobSpec::FromJson(R"({"version": 3})", "job.json").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JobSpec, BestMetricAndDirection) {
  JobSpec s;
  s.model = "/m";
  s.datasets = {"d"};
  EXPECT_EQ(s.BestMetricName(), "loss");
  EXPECT_FALSE(s.GreaterIsBetter());
  s.metric_for_best_model = "eval_acc";  // HF's spelling
  EXPECT_EQ(s.BestMetricName(), "acc");
  EXPECT_TRUE(s.GreaterIsBetter());
  EXPECT_TRUE(s.Validate().ok());
  s.greater_is_better = false;
  EXPECT_FALSE(s.GreaterIsBetter());
  s.greater_is_better.reset();
  // Generation metrics need generation eval at every evaluation.
  s.metric_for_best_model = "bleu";
  EXPECT_NE(std::string(s.Validate().message()).find("predict_with_generate"), std::string::npos);
  s.predict_with_generate = true;
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_TRUE(s.GreaterIsBetter());
  s.generation_eval = "end";
  EXPECT_FALSE(s.Validate().ok());
  EXPECT_TRUE(s.GenerationAt(/*final=*/true));
  EXPECT_FALSE(s.GenerationAt(/*final=*/false));
  s.metric_for_best_model = "edit_distance";
  s.generation_eval = "every_eval";
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_TRUE(s.GenerationAt(/*final=*/false));
  s.metric_for_best_model = "rouge";
  EXPECT_NE(std::string(s.Validate().message()).find("metric_for_best_model"), std::string::npos);
  s.metric_for_best_model = "loss";
  s.generation_eval = "sometimes";
  EXPECT_NE(std::string(s.Validate().message()).find("generation_eval"), std::string::npos);
  s.generation_eval = "end";
  s.generation_batch_size = 0;
  EXPECT_NE(std::string(s.Validate().message()).find("generation_batch_size"), std::string::npos);
}

}  // namespace
}  // namespace vlmd
