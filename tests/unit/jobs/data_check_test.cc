// CheckJobData: the model-side part of VALIDATING (config, preprocessor, tokenizer) with the
// checked-in tiny model.
#include "core/jobs/data_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/base/file_util.h"

namespace vlmd::jobs {
namespace {

const std::string kModel = std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/models/gqa_tied";

TEST(DataCheckTest, LoadsTheModelsConfigAndTokenizer) {
  JobSpec spec;
  spec.model = kModel;
  std::atomic<bool> stop{false};
  auto result = CheckJobData(spec, api::JobServiceConfig(), stop);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->report.find("tokenizer"), std::string::npos) << result->report;
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
