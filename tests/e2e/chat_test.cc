// End to end: `vlmctl chat` driven from a script (stdin a pipe) and from a pseudo-terminal,
// against the tiny model and the adapter of a short job. Each answer must equal what Infer gives
// for the same conversation (greedy), including the multi-turn history, images, /adapter and
// /clear.
#include <gtest/gtest.h>

#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/e2e/job_harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;

constexpr int kTokens = 6;

// Text as a terminal shows it (every "\n" becomes "\r\n").
std::string OnTerminal(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("\r\n") : std::string(1, c);
  return out;
}

class ChatE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    rows_ = WriteImageDataset(dir_->path(), 8);
    server_ =
        ServerProcess::Start(JobServerYaml(dir_->path()), dir_->path(), {}, &error_).release();
    if (server_ == nullptr) return;
    // An adapter to switch to: a short job with a high learning rate, served as "r4".
    std::vector<std::string> args = {"sft", "--name", "r4", "--lora_rank", "4", "--watch"};
    std::vector<std::string> flags = QuickJobFlags(dir_->Join("train.jsonl"), 4, 4, "0.05");
    args.insert(args.end(), flags.begin(), flags.end());
    ProcessResult job = Vlmctl(*server_, args);
    if (job.exit_code != 0) error_ = "the adapter's job failed: " + job.out + job.err;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << error_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  // Infer's greedy answer to `turns` (user, assistant, user, ...); an image first when set.
  static std::string Answer(const std::vector<std::string>& turns, const std::string& adapter,
                            const std::string& image = "") {
    v1::InferRequest request;
    for (size_t i = 0; i < turns.size(); ++i) {
      v1::ChatMessage* m = request.add_messages();
      m->set_role(i % 2 ? "assistant" : "user");
      if (i == 0 && !image.empty()) m->add_content()->mutable_image()->set_data(ReadFile(image));
      m->add_content()->set_text(turns[i]);
    }
    request.set_adapter(adapter);
    request.mutable_params()->set_max_new_tokens(kTokens);
    request.mutable_params()->set_temperature(0);
    v1::InferResponse response;
    grpc::Status status = Infer(*server_->Stub(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.text();
  }
  static std::vector<std::string> ChatArgs() {
    return {VlmctlBinary(),     "--addr",
            server_->address(), "chat",
            "--max-new-tokens", std::to_string(kTokens),
            "--temperature",    "0"};
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::vector<DataRow> rows_;
  static std::string error_;
};

TempDir* ChatE2E::dir_ = nullptr;
ServerProcess* ChatE2E::server_ = nullptr;
std::vector<DataRow> ChatE2E::rows_;
std::string ChatE2E::error_;

TEST_F(ChatE2E, FromAScriptAnswersEqualInferTurnByTurn) {
  const std::string image = rows_[0].image;
  std::string first = Answer({"Hello there."}, "");
  std::string second = Answer({"Hello there.", first, "And then?"}, "");
  std::string adapted = Answer({"Hello there.", first, "And then?", second, "More."}, "r4");
  std::string fresh = Answer({"Hi."}, "r4");
  std::string pictured = Answer({"What is this?"}, "", image);
  // The turns differ, so the comparison below shows that history and adapter reach the model.
  EXPECT_NE(second, Answer({"And then?"}, ""));
  EXPECT_NE(fresh, Answer({"Hi."}, ""));
  std::string script =
      "Hello there.\nAnd then?\n/adapter r4\nMore.\n/clear\nHi.\n/adapter\n"
      "/clear\n<image>What is this?\n" +
      image + "\n/exit\nnot read\n";
  ProcessResult r = RunProcess(ChatArgs(), {}, 120, script);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, first + "\n" + second + "\n" + adapted + "\n" + fresh + "\n" + pictured + "\n");
  EXPECT_NE(r.err.find("adapter: r4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("history cleared"), std::string::npos) << r.err;
  // Inline <img>PATH</img> is the same image; --json shows its tokens in the usage.
  r = RunProcess(ChatArgs(), {}, 120, "<img>" + image + "</img>What is this?\n");
  EXPECT_EQ(r.out, pictured + "\n") << r.err;
  std::vector<std::string> args = ChatArgs();
  args.push_back("--json");
  r = RunProcess(args, {}, 120, "<img>" + image + "</img>What is this?\nHi.\n");
  std::istringstream lines(r.out);
  std::string first_line, second_line;
  std::getline(lines, first_line);
  std::getline(lines, second_line);
  json turn = json::parse(first_line, nullptr, false);
  ASSERT_TRUE(turn.is_object()) << r.out << r.err;
  EXPECT_EQ(turn.value("text", ""), pictured);
  EXPECT_GT(std::stoi(turn["usage"].value("image_tokens", "0")), 0) << first_line;
  EXPECT_TRUE(json::parse(second_line, nullptr, false).is_object()) << r.out;
}

TEST_F(ChatE2E, ErrorsAreReportedAndTheSessionGoesOn) {
  std::string answer = Answer({"Still here?"}, "");
  ProcessResult r = RunProcess(ChatArgs(), {}, 120,
                               "/adapter nope\nHello.\n/adapter\n<img>/no/such.png</img>hi\n"
                               "Still here?\n");
  EXPECT_EQ(r.exit_code, 4) << r.err;  // the first failure: NOT_FOUND (unknown adapter)
  EXPECT_NE(r.err.find("vlmctl: NOT_FOUND:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot read image file '/no/such.png'"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(answer + "\n"), std::string::npos) << r.out;
}

TEST_F(ChatE2E, FromATerminalShowsPromptsAndStreamsAnswers) {
  const std::string image = rows_[0].image;
  std::string first = Answer({"Hello there."}, "");
  std::string pictured = Answer({"What is this?"}, "", image);
  ProcessResult r = RunInTerminal(
      ChatArgs(), {}, "Hello there.\n/clear\n<image>What is this?\n" + image + "\n/exit\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // The terminal shows the help, the prompts (SWIFT's), the typed lines and the answers.
  EXPECT_NE(r.out.find("Commands: /clear"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("<<< "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Input an image path or URL <<< "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(OnTerminal(first + "\n")), std::string::npos) << first << "\n" << r.out;
  EXPECT_NE(r.out.find(OnTerminal(pictured + "\n")), std::string::npos) << r.out;
}

}  // namespace
}  // namespace vlmd::e2e
