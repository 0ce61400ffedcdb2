// End to end: the vlmctl binary against a real `vlmd serve` — output modes, environment
// variables, and exit codes per error class.
#include <gtest/gtest.h>

#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/common/http_client.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;

constexpr char kToken[] = "vlmctl-token-5f4e3d2c1b0a";

class VlmctlE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    image_ = dir_->Join("tiny.png");
    WriteFile(image_, ReadFile(SourceDir() + "/tests/fixtures/images/tiny_20x15.png"));
    std::string yaml = "models:\n  tiny: " + TinyModelDir() +
                       "\nauth:\n  tokens:\n    - {name: cli, token: " + kToken +
                       ", role: infer}\n";
    server_ = ServerProcess::Start(yaml, dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << error_; }

  // vlmctl with the server's address and token in the environment.
  static ProcessResult Vlmctl(const std::vector<std::string>& args,
                              std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {VlmctlBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    env.insert(env.begin(),
               {"VLMD_ADDR=" + server_->address(), std::string("VLMD_TOKEN=") + kToken});
    return RunProcess(argv, env);
  }
  static v1::InferResponse Reference(const std::string& prompt, int tokens) {
    v1::InferResponse out;
    EXPECT_TRUE(Infer(*server_->Stub(), TextRequest(prompt, tokens), &out, 60, kToken).ok());
    return out;
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_, image_;
};

TempDir* VlmctlE2E::dir_ = nullptr;
ServerProcess* VlmctlE2E::server_ = nullptr;
std::string VlmctlE2E::error_, VlmctlE2E::image_;

TEST_F(VlmctlE2E, InferPrintsTheText) {
  v1::InferResponse ref = Reference("Tell me a story.", 8);
  ProcessResult r =
      Vlmctl({"infer", "--max-new-tokens", "8", "--temperature", "0", "Tell me a story."});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref.text() + "\n");
  r = Vlmctl(
      {"infer", "--stream", "--max-new-tokens", "8", "--temperature", "0", "Tell me a story."});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref.text() + "\n");
}

TEST_F(VlmctlE2E, JsonOutputs) {
  v1::InferResponse ref = Reference("Numbers:", 6);
  ProcessResult r =
      Vlmctl({"infer", "--json", "--max-new-tokens", "6", "--temperature", "0", "Numbers:"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j.value("text", ""), ref.text());
  EXPECT_EQ(j["token_ids"].get<std::vector<int32_t>>(),
            std::vector<int32_t>(ref.token_ids().begin(), ref.token_ids().end()));
  EXPECT_EQ(j.value("model", ""), "tiny");
  EXPECT_TRUE(j.contains("usage") && j.contains("timings") && j.contains("finish_reason"));

  r = Vlmctl(
      {"infer", "--stream", "--json", "--max-new-tokens", "6", "--temperature", "0", "Numbers:"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line, text;
  std::vector<int32_t> ids;
  int dones = 0;
  while (std::getline(lines, line)) {
    json m = json::parse(line, nullptr, false);
    ASSERT_FALSE(m.is_discarded()) << line;
    if (m.contains("delta")) {
      text += m["delta"].value("text", "");
      for (int32_t id : m["delta"].value("token_ids", std::vector<int32_t>{})) ids.push_back(id);
    }
    dones += m.contains("done");
  }
  EXPECT_EQ(text, ref.text());
  EXPECT_EQ(ids, std::vector<int32_t>(ref.token_ids().begin(), ref.token_ids().end()));
  EXPECT_EQ(dones, 1);
}

TEST_F(VlmctlE2E, ImagesModelsAndHealth) {
  ProcessResult r = Vlmctl({"infer", "-v", "--image", image_, "--max-new-tokens", "3", "--system",
                            "You read images.", "What is this?"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("image "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("(image 0)"), std::string::npos) << "the image reached the model: " << r.err;
  r = Vlmctl({"models"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("tiny *"), std::string::npos) << r.out;
  r = Vlmctl({"models", "--json"});
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.contains("models")) << r.out;
  EXPECT_EQ(j["models"][0].value("name", ""), "tiny");
  r = Vlmctl({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Vlmctl({"health", "--service", "vlmd.v1.Inference"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(VlmctlE2E, ErrorsHaveCodeNamesAndExitCodes) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    int exit_code;
    std::string stderr_has;
  };
  std::vector<Case> cases = {
      {{"infer", "--model", "nope", "hi"}, {}, 4, "vlmctl: NOT_FOUND: unknown model 'nope'"},
      {{"infer", "--temperature", "-1", "hi"}, {}, 3, "vlmctl: INVALID_ARGUMENT: temperature"},
      {{"infer", "hi"}, {"VLMD_TOKEN=not-the-token-0000000"}, 5, "vlmctl: UNAUTHENTICATED"},
      {{"adapters", "unload", "x"}, {}, 5, "vlmctl: PERMISSION_DENIED"},
      {{"--addr", "127.0.0.1:1", "--timeout", "5", "models"}, {}, 6, "vlmctl: UNAVAILABLE"},
      {{"--timeout", "0.5", "infer", "--ignore-eos", "--max-new-tokens", "4000", "long"},
       {},
       6,
       "vlmctl: DEADLINE_EXCEEDED"},
      {{"infer", "--image", "/no/such/file.png", "hi"}, {}, 2, "cannot read image file"},
      {{"infer", "--no-such-flag", "hi"}, {}, 2, ""},
  };
  for (const Case& c : cases) {
    ProcessResult r = Vlmctl(c.args, c.env);
    std::string what = c.args.back() + " / " + c.stderr_has;
    EXPECT_EQ(r.exit_code, c.exit_code) << what << "\n" << r.err;
    EXPECT_NE(r.err.find(c.stderr_has), std::string::npos) << what << "\n" << r.err;
  }
}

}  // namespace
}  // namespace vlmd::e2e
