// CheckJobData (VALIDATING): the model's config, preprocessor and tokenizer load, and every
// data line and image header is checked, with the checked-in tiny model and data set.
#include "core/jobs/data_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/base/file_util.h"

namespace vlmd::jobs {
namespace {

const std::string kModel = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/models/gqa_tied";

const std::string kTrain = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/train";

api::JobServiceConfig Config(const std::string& extra_root) {
  api::JobServiceConfig c;
  c.allowed_roots = {VLMD_SOURCE_DIR, extra_root};
  return c;
}

TEST(DataCheckTest, CountsTrainAndValidationSamples) {
  JobSpec spec;
  spec.model = kModel;
  spec.datasets = {kTrain + "/train.jsonl"};
  spec.val_datasets = {kTrain + "/val.jsonl"};
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, Config(kTrain), stop);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->train_samples, 8);
  EXPECT_EQ(result->val_samples, 2);
  EXPECT_EQ(result->skipped_samples, 0);
}

TEST(DataCheckTest, MalformedLineFailsWithFileAndLine) {
  char tmpl[] = "/tmp/vlmd_datacheck_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string data = JoinPath(dir, "bad.jsonl");
  ASSERT_TRUE(WriteFileAtomic(data, R"({"query": "hi", "response": "ok"})"
                                    "\n{\"query\": broken\n").ok());
  JobSpec spec;
  spec.model = kModel;
  spec.datasets = {data};
  spec.split_ratio = 0;
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, Config(dir), stop);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find(data + ":2"), std::string::npos) << result.status();
}

TEST(DataCheckTest, BrokenConfigFailsNamingTheFile) {
  char tmpl[] = "/tmp/vlmd_datacheck_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "config.json"), "{\"text_config\": 7").ok());
  JobSpec spec;
  spec.model = dir;
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, api::JobServiceConfig(), stop);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find(JoinPath(dir, "config.json")), std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace vlmd::jobs
