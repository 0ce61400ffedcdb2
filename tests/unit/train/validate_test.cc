#include "core/train/validate.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "tests/unit/text/real_tokenizer.h"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

ExampleOptions Options(std::optional<std::vector<std::string>> roots = std::nullopt) {
  StatusOr<ExampleOptions> options = MakeExampleOptions(
      ModelConfig(), PreprocessorConfig(), RealTokenizer(), std::nullopt, std::nullopt);
  EXPECT_TRUE(options.ok()) << options.status();
  options->images.allowed_roots = std::move(roots);
  return *options;
}

StatusOr<ValidatedDataset> Validate(const std::string& file, int64_t max_length,
                                    const ExampleOptions& options) {
  ValidationOptions v;
  v.max_length = max_length;
  return ValidateDataset({DatasetSource{file, {file}, false}}, {}, options, v);
}

TEST(ValidateTest, TokenCountsEqualWhatBuildExampleProduces) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  dir.WritePng("a.png", 300, 90);
  dir.WritePng("b.png", 20, 15);
  const std::string file = dir.Write(
      "t.jsonl",
      "{\"query\": \"<image>Read this.\", \"response\": \"\\\\frac{1}{2}\", \"images\": "
      "[\"a.png\"]}\n"
      "{\"query\": \"Two: <image> and <image>\", \"response\": \"ok\", "
      "\"images\": [\"a.png\", \"b.png\"]}\n"
      "{\"query\": \"text only\", \"response\": \"fine\", \"history\": [[\"a\", \"b\"]]}\n");
  const ExampleOptions options = Options();
  StatusOr<ValidatedDataset> v = Validate(file, 2048, options);
  ASSERT_TRUE(v.ok()) << v.status();
  const ValidationReport& report = v->report;
  EXPECT_TRUE(report.ok()) << report.Summary();
  ASSERT_EQ(report.tokens.size(), 3u);
  for (size_t i = 0; i < v->samples.size(); ++i) {
    StatusOr<TokenizedExample> ex = BuildExample(v->samples[i], options);
    ASSERT_TRUE(ex.ok()) << ex.status();
    EXPECT_EQ(report.tokens[i], static_cast<int64_t>(ex->ids.size())) << i;
    EXPECT_EQ(report.image_tokens[i], ex->image_tokens) << i;
  }
  // 300x90 -> smart_resize 308x84 -> (84/28)*(308/28) = 33 tokens.
  EXPECT_EQ(report.image_tokens[0], 33);
  EXPECT_EQ(report.image_tokens[2], 0);
  EXPECT_EQ(report.samples_ok, 3);
  EXPECT_EQ(report.MaxTokens(), report.tokens[1]);
}

TEST(ValidateTest, OverLongSamplesAreReportedAndSkippedNotErrors) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  dir.WritePng("wide.png", 560, 280);  // 200 tokens
  const std::string file =
      dir.Write("t.jsonl",
                "{\"query\": \"short\", \"response\": \"ok\"}\n"
                "{\"query\": \"<image>big\", \"response\": \"ok\", \"images\": [\"wide.png\"]}\n");
  StatusOr<ValidatedDataset> v = Validate(file, 100, Options());
  ASSERT_TRUE(v.ok()) << v.status();
  const ValidationReport& r = v->report;
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.samples_ok, 1);
  EXPECT_EQ(r.skipped_too_long, 1);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.image_tokens[1], 200);
  const int64_t text_tokens = r.tokens[1] - 200;
  ASSERT_EQ(r.issues.kept().size(), 1u);
  EXPECT_EQ(r.issues.kept()[0].ToString(),
            absl::StrCat(file, ":2: ", r.tokens[1], " tokens (", text_tokens,
                         " text + 200 image) exceed max_length 100"));
  EXPECT_EQ(r.verdicts[1], SampleVerdict::kTooLong);
  std::vector<Sample> kept = KeepTrainable(v->samples, r);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].line, 1);
  const std::string summary = r.Summary();
  EXPECT_NE(summary.find("2 rows in 1 file. 1 sample is ready"), std::string::npos) << summary;
  EXPECT_NE(summary.find("1 sample is longer than max_length 100 and will be skipped"),
            std::string::npos);
  EXPECT_NE(summary.find(file + ":2:"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("must be fixed"), std::string::npos) << summary;
}

TEST(ValidateTest, BadRowsAndImagesFailValidation) {
  if (RealTokenizer() == nullptr) return;
  TempDir dir;
  dir.WritePng("ok.png", 28, 28);
  dir.Write("corrupt.png", "\x89PNG\r\n\x1a\nnot really");
  dir.Write("notes.png", "plain text pretending to be a picture");
  dir.WritePng("huge.png", 300, 200);
  dir.WritePng("thin.png", 1, 300);  // aspect ratio 300 > 200
  dir.WritePng("vanishes.png", 28, 28);
  const std::string file =
      dir.Write("t.jsonl",
                "{\"query\": \"fine\", \"response\": \"ok\", \"images\": [\"ok.png\"]}\n"
                "{\"query\": \"broken\"\n"
                "{\"query\": \"a\", \"response\": \"b\", \"images\": [\"corrupt.png\"]}\n"
                "{\"query\": \"a\", \"response\": \"b\", \"images\": [\"notes.png\"]}\n"
                "{\"query\": \"a\", \"response\": \"b\", \"images\": [\"huge.png\"]}\n"
                "{\"query\": \"a\", \"response\": \"b\", \"images\": [\"thin.png\"]}\n"
                "{\"query\": \"a\", \"response\": \"b\", \"images\": [\"vanishes.png\"]}\n");
  ExampleOptions options = Options(std::vector<std::string>{dir.path()});
  options.images.decode.max_pixels = 50000;
  StatusOr<DatasetReadResult> read = ReadDatasetFile(file, {});
  ASSERT_TRUE(read.ok());
  std::remove(dir.Path("vanishes.png").c_str());  // gone between reading and checking
  StatusOr<ValidationReport> checked = ValidateSamples(read->samples, options, {});
  ASSERT_TRUE(checked.ok());
  const std::vector<std::pair<int64_t, IssueKind>> expected = {{3, IssueKind::kImageCorrupt},
                                                               {4, IssueKind::kImageCorrupt},
                                                               {5, IssueKind::kImageTooLarge},
                                                               {6, IssueKind::kImageTooLarge},
                                                               {7, IssueKind::kImageMissing}};
  ASSERT_EQ(checked->issues.kept().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(checked->issues.kept()[i].line, expected[i].first);
    EXPECT_EQ(checked->issues.kept()[i].kind, expected[i].second)
        << checked->issues.kept()[i].ToString();
  }
  EXPECT_NE(
      checked->issues.kept()[2].reason.find("300x200 (60000 pixels), over the limit of 50000"),
      std::string::npos)
      << checked->issues.kept()[2].reason;
  EXPECT_EQ(checked->errors, 5);
  EXPECT_EQ(checked->samples_ok, 1);
  EXPECT_FALSE(checked->ok());

  // Through ValidateDataset the unreadable row joins the report.
  StatusOr<ValidatedDataset> all = Validate(file, 2048, options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->report.errors, 6);
  EXPECT_EQ(all->report.rows, 7);
  EXPECT_EQ(all->report.issues.kept()[0].ToString().rfind(file + ":2: bad JSON: ", 0), 0u);
  const std::string summary = all->report.Summary();
  EXPECT_NE(summary.find("Data check: 7 rows in 1 file."), std::string::npos) << summary;
  EXPECT_NE(summary.find("6 rows have errors that must be fixed before training (1 bad_json, "
                         "2 image_corrupt, 1 image_missing, 2 image_too_large)"),
            std::string::npos)
      << summary;
}

TEST(ValidateTest, StopFlagCancels) {
  if (RealTokenizer() == nullptr) return;
  std::atomic<bool> stop{true};
  ValidationOptions v;
  v.stop = &stop;
  Sample s;
  s.messages = {{"user", {{ContentPart::Type::kText, "q"}}},
                {"assistant", {{ContentPart::Type::kText, "a"}}}};
  EXPECT_EQ(ValidateSamples({s}, Options(), v).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(ValidateSamples({}, Options(), v).ok());  // nothing to check, nothing to stop
}

}  // namespace
}  // namespace vlmd
