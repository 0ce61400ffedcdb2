#include "core/train/job_data.h"

#include "gtest/gtest.h"
#include "tests/unit/text/real_tokenizer.h"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

std::string Rows(int n, const std::string& extra = "") {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += "{\"query\": \"<image>q" + std::to_string(i) +
            "\", \"response\": \"r\", \"images\": [\"img.png\"]" + extra + "}\n";
  }
  return text;
}

StatusOr<JobData> Load(const JobSpec& spec, const TempDir& dir) {
  JobDataOptions options;
  options.data_root = dir.path();
  options.allowed_roots = std::vector<std::string>{dir.path()};
  return LoadJobData(spec, ModelConfig(), PreprocessorConfig(), RealTokenizer(), options);
}

TEST(JobDataTest, SplitsTheTrainableSamples) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  dir.WritePng("img.png", 56, 56);
  JobSpec spec;
  spec.datasets = {dir.Write("a.jsonl", Rows(150)), dir.Write("b.csv", "query,response\nx,y\n")};
  StatusOr<JobData> data = Load(spec, dir);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(data->ok()) << data->Summary();
  EXPECT_EQ(data->val.size(), 1u);  // max(int(151 * 0.01), 1)
  EXPECT_EQ(data->train.size(), 150u);
  EXPECT_FALSE(data->val_report.has_value());
  EXPECT_EQ(data->Summary().rfind("Training data: Data check: 151 rows in 2 files.", 0), 0u)
      << data->Summary();

  spec.split_ratio = 0.1;
  spec.max_pixels = 28 * 28 * 4;  // the job's pixel limit reaches the examples
  data = Load(spec, dir);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->val.size(), 15u);
  EXPECT_EQ(data->example_options.preprocess.max_pixels, 28 * 28 * 4);
  EXPECT_EQ(data->train_report.image_tokens[0], 4);
}

TEST(JobDataTest, ValidationDataSetsAndFailures) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  dir.WritePng("img.png", 56, 56);
  JobSpec spec;
  spec.datasets = {dir.Write("train.jsonl", Rows(3))};
  spec.val_datasets = {dir.Write("val.jsonl", Rows(2))};
  StatusOr<JobData> data = Load(spec, dir);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(data->ok());
  EXPECT_EQ(data->train.size(), 3u);  // nothing split off: the validation set is given
  EXPECT_EQ(data->val.size(), 2u);
  EXPECT_NE(data->Summary().find(" Validation data: Data check: 2 rows"), std::string::npos);

  dir.Write("val.jsonl", Rows(1) + "{broken\n");
  data = Load(spec, dir);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_FALSE(data->ok());
  EXPECT_TRUE(data->train.empty());
  EXPECT_NE(data->Summary().find(dir.Path("val.jsonl") + ":2: bad JSON"), std::string::npos)
      << data->Summary();

  spec.val_datasets.clear();
  spec.datasets = {"latex-ocr-handwrite"};  // no such folder under the data root
  EXPECT_EQ(Load(spec, dir).status().code(), absl::StatusCode::kNotFound);
  spec.datasets = {dir.Write("one.jsonl", Rows(1))};
  EXPECT_EQ(Load(spec, dir).status().code(), absl::StatusCode::kInvalidArgument);  // can't split
}

}  // namespace
}  // namespace vlmd
