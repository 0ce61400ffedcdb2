// End to end: Evaluate on the tiny model over a generated image+text data set; every
// per-sample prediction must equal what `vlmd generate` produces for that sample alone
// (greedy), and `vlmctl eval` prints the summary and where results.jsonl lies.
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/e2e/job_harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;

constexpr int kRows = 4, kTokens = 6;
constexpr char kQuery[] = "Using LaTeX to perform OCR on the image.";

// The text `vlmd generate` answers for one data row (greedy), or "" with *error set.
std::string GenerateText(const DataRow& row, const std::string& work, std::string* error) {
  std::string request = work + "/generate-" + std::to_string(std::hash<std::string>()(row.image));
  WriteFile(request, json{{"messages",
                           {{{"role", "user"},
                             {"content",
                              {{{"type", "image"}, {"image", row.image}},
                               {{"type", "text"}, {"text", kQuery}}}}}}}}
                         .dump());
  ProcessResult r =
      RunProcess({VlmdBinary(), "generate", "--model", TinyModelDir(), "--request", request,
                  "--max-new-tokens", std::to_string(kTokens), "--temperature", "0"});
  json j = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !j.is_object()) {
    *error = r.err + r.out;
    return "";
  }
  return j.value("text", "");
}

// Runs Evaluate to the end, collecting the samples of the progress messages and the summary.
grpc::Status RunEvaluate(v1::Jobs::Stub& stub, const v1::EvaluateRequest& request,
                         std::vector<v1::EvalSample>* samples, v1::EvalSummary* summary) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
  auto reader = stub.Evaluate(&ctx, request);
  v1::EvaluateResponse message;
  while (reader->Read(&message)) {
    if (message.has_progress() && message.progress().has_sample()) {
      samples->push_back(message.progress().sample());
    }
    if (message.has_summary()) *summary = message.summary();
  }
  return reader->Finish();
}

TEST(EvaluateE2E, PredictionsEqualVlmdGenerateOneByOne) {
  TempDir dir;
  std::vector<DataRow> rows = WriteImageDataset(dir.path(), kRows, "eval.jsonl");
  std::string error;
  auto server = ServerProcess::Start(JobServerYaml(dir.path()), dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  v1::EvaluateRequest request;
  request.set_model("tiny");
  request.add_dataset(dir.Join("eval.jsonl"));
  request.mutable_params()->set_max_new_tokens(kTokens);
  request.set_output_dir(dir.Join("evals"));
  std::vector<v1::EvalSample> samples;
  v1::EvalSummary summary;
  grpc::Status status = RunEvaluate(*JobsStub(*server), request, &samples, &summary);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(summary.samples(), kRows);
  EXPECT_EQ(samples.size(), static_cast<size_t>(kRows));
  std::vector<std::string> results = ReadLines(summary.results_path());
  ASSERT_EQ(results.size(), static_cast<size_t>(kRows)) << summary.results_path();
  for (int i = 0; i < kRows; ++i) {
    json line = json::parse(results[i], nullptr, false);
    ASSERT_TRUE(line.is_object()) << results[i];
    std::string expected = GenerateText(rows[i], dir.path(), &error);
    ASSERT_TRUE(error.empty()) << error;
    EXPECT_EQ(line.value("prediction", ""), expected) << "sample " << i;
    EXPECT_EQ(line.value("reference", ""), rows[i].response);
  }
  ProcessResult cli =
      Vlmctl(*server, {"eval", "--model", "tiny", "--dataset", dir.Join("eval.jsonl"),
                       "--max-new-tokens", std::to_string(kTokens), "--out", dir.Join("evals2")});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("exact_match:"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("results:             " + dir.Join("evals2")), std::string::npos)
      << cli.out;
  ProcessResult as_json =
      Vlmctl(*server, {"eval", "--model", "tiny", "--dataset", dir.Join("eval.jsonl"),
                       "--max-new-tokens", std::to_string(kTokens), "--max-samples", "2", "--out",
                       dir.Join("evals3"), "--json"});
  json j = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << as_json.out << as_json.err;
  EXPECT_EQ(j.value("samples", std::string()), "2");  // int64 is a JSON string in proto3
}

// A job on a named data set (latex-ocr-print under training.data_root), then Evaluate on the
// job's own validation split: no data files named, the evaluator rebuilds the split.
TEST(EvaluateE2E, AJobOnANamedDataSetIsEvaluatedOnItsValidationSplit) {
  TempDir dir;
  std::string folder = dir.Join("datasets/latex-ocr-print");
  ASSERT_EQ(RunProcess({"mkdir", "-p", folder}).exit_code, 0);
  WriteImageDataset(folder, 10);
  std::string error;
  auto server = ServerProcess::Start(
      JobServerYaml(dir.path(), 1, "  data_root: " + dir.Join("datasets") + "\n"), dir.path(), {},
      &error);
  ASSERT_NE(server, nullptr) << error;
  std::vector<std::string> args = {"sft", "--name", "named", "--watch"};
  std::vector<std::string> flags = QuickJobFlags("latex-ocr-print", 2, 2);
  args.insert(args.end(), flags.begin(), flags.end());
  ProcessResult job = Vlmctl(*server, args);
  ASSERT_EQ(job.exit_code, 0) << job.out << job.err;
  std::string id = job.out.substr(0, job.out.find(' '));
  v1::EvaluateRequest request;
  request.set_job_id(id);
  request.mutable_params()->set_max_new_tokens(kTokens);
  std::vector<v1::EvalSample> samples;
  v1::EvalSummary summary;
  grpc::Status status = RunEvaluate(*JobsStub(*server), request, &samples, &summary);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(summary.samples(), 2);  // 10 rows, dataset_test_ratio 0.2
  EXPECT_TRUE(summary.has_eval_loss());
  EXPECT_EQ(ReadLines(summary.results_path()).size(), 2u);
}

}  // namespace
}  // namespace vlmd::e2e
