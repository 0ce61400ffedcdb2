// CheckJobData (VALIDATING) with the checked-in tiny model: the model's config, preprocessor and
// tokenizer, then every data line, with file:line in the failure reason.
#include "core/jobs/data_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/base/file_util.h"

namespace vlmd::jobs {
namespace {

const std::string kModel = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/models/gqa_tied";

std::string TempDir() {
  char tmpl[] = "/tmp/vlmd_datacheck_XXXXXX";
  return mkdtemp(tmpl);
}

// A job spec on the fixture model with one data file of `lines` under a fresh root.
JobSpec SpecWithData(const std::string& dir, const std::string& lines) {
  JobSpec spec;
  spec.model = kModel;
  spec.datasets = {JoinPath(dir, "train.jsonl")};
  EXPECT_TRUE(WriteFileAtomic(spec.datasets[0], lines).ok());
  return spec;
}

api::JobServiceConfig ConfigFor(const std::string& dir) {
  api::JobServiceConfig config;
  config.allowed_roots = {dir};
  return config;
}

TEST(DataCheckTest, CountsSamplesAndTheValidationSplit) {
  std::string dir = TempDir();
  std::string lines;
  for (int i = 0; i < 20; ++i)
    lines += R"({"query": "hi", "response": "hello"})"
             "\n";
  JobSpec spec = SpecWithData(dir, lines);
  spec.split_ratio = 0.1;
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, ConfigFor(dir), stop);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->train_samples, 18);
  EXPECT_EQ(result->val_samples, 2);
  EXPECT_EQ(result->skipped_samples, 0);
  EXPECT_NE(result->report.find("20 samples are ready"), std::string::npos) << result->report;
}

TEST(DataCheckTest, ABadLineFailsNamingFileAndLine) {
  std::string dir = TempDir();
  JobSpec spec = SpecWithData(dir, R"({"query": "hi", "response": "hello"})"
                                   "\n{\"query\": \"broken\"\n");
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, ConfigFor(dir), stop);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message().find(spec.datasets[0] + ":2: "), 0u) << result.status();
}

TEST(DataCheckTest, AnImageOutsideTheRootsFails) {
  std::string dir = TempDir();
  JobSpec spec =
      SpecWithData(dir, R"({"query": "<image>hi", "response": "x", "images": ["/etc/passwd"]})"
                        "\n");
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, ConfigFor(dir), stop);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find(":1: "), std::string::npos) << result.status();
}

TEST(DataCheckTest, BrokenConfigFailsNamingTheFile) {
  std::string dir = TempDir();
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
