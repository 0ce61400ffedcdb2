// End to end: LoRA adapters loaded and unloaded through the RPCs (and vlmctl) while serving,
// and preloaded from the config. Uses the committed PEFT fixture adapter (tests/fixtures/lora,
// written by PEFT on the reference machine) on its base model; outputs are compared with
// `vlmd generate --adapter`.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/http_client.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
namespace fs = std::filesystem;

std::string BaseModel() { return SourceDir() + "/tests/fixtures/models/gqa_tied"; }
std::string FixtureAdapter() { return SourceDir() + "/tests/fixtures/lora/llm_r4"; }
constexpr char kPrompt[] = "Write the formula.";
constexpr int kTokens = 10;

class AdaptersE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    root_ = dir_->Join("root");
    fs::create_directories(root_ + "/adapters/empty");
    fs::copy(FixtureAdapter(), root_ + "/adapters/llm_r4", fs::copy_options::recursive);
    std::string yaml = "models:\n  gqa: " + BaseModel() + "\nallowed_roots: [" + root_ + "]\n";
    server_ = ServerProcess::Start(yaml, dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << error_;
    stub_ = server_->Stub();
  }
  grpc::Status Load(const std::string& name, const std::string& path, v1::AdapterInfo* info,
                    const std::string& model = "") {
    grpc::ClientContext ctx;
    v1::LoadAdapterRequest r;
    r.set_name(name);
    r.set_path(path);
    r.set_model(model);
    v1::LoadAdapterResponse out;
    grpc::Status s = stub_->LoadAdapter(&ctx, r, &out);
    if (info != nullptr) *info = out.adapter();
    return s;
  }
  grpc::Status Unload(const std::string& name) {
    grpc::ClientContext ctx;
    v1::UnloadAdapterRequest r;
    r.set_name(name);
    v1::UnloadAdapterResponse out;
    return stub_->UnloadAdapter(&ctx, r, &out);
  }
  std::vector<std::string> Listed() {
    grpc::ClientContext ctx;
    v1::ListAdaptersResponse out;
    EXPECT_TRUE(stub_->ListAdapters(&ctx, v1::ListAdaptersRequest(), &out).ok());
    std::vector<std::string> names;
    for (const auto& a : out.adapters()) names.push_back(a.name());
    return names;
  }
  std::vector<int32_t> Generate(const std::string& adapter, grpc::Status* status) {
    v1::InferRequest r = TextRequest(kPrompt, kTokens);
    r.set_adapter(adapter);
    v1::InferResponse out;
    *status = Infer(*stub_, r, &out);
    return {out.token_ids().begin(), out.token_ids().end()};
  }
  static std::vector<int32_t> Offline(const std::string& adapter_dir) {
    std::string error;
    std::vector<int32_t> ids = OfflineGenerate(
        BaseModel(),
        std::string("{\"messages\": [{\"role\": \"user\", \"content\": \"") + kPrompt + "\"}]}",
        kTokens, dir_->path(), &error, adapter_dir);
    EXPECT_FALSE(ids.empty()) << error;
    return ids;
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_, root_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TempDir* AdaptersE2E::dir_ = nullptr;
ServerProcess* AdaptersE2E::server_ = nullptr;
std::string AdaptersE2E::error_, AdaptersE2E::root_;

TEST_F(AdaptersE2E, LoadInferUnloadWhileServing) {
  EXPECT_TRUE(Listed().empty());
  v1::AdapterInfo info;
  grpc::Status s = Load("latex", root_ + "/adapters/llm_r4", &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.name(), "latex");
  EXPECT_EQ(info.model(), "gqa");
  EXPECT_EQ(info.rank(), 4);
  EXPECT_GT(info.modules(), 0);
  EXPECT_EQ(Listed(), std::vector<std::string>{"latex"});

  std::vector<int32_t> with_adapter = Generate("latex", &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(with_adapter, Offline(root_ + "/adapters/llm_r4"));
  std::vector<int32_t> base = Generate("", &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(base, Offline(""));

  testing::HttpResponse m = testing::HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(m.body.find("vlmd_adapters_loaded{model=\"gqa\"} 1"), std::string::npos) << m.body;

  ASSERT_TRUE(Unload("latex").ok());
  EXPECT_TRUE(Listed().empty());
  Generate("latex", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("latex"), std::string::npos);
  EXPECT_EQ(Unload("latex").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AdaptersE2E, LoadErrors) {
  grpc::Status s = Load("outside", FixtureAdapter(), nullptr);  // not under the roots
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = Load("empty", root_ + "/adapters/empty", nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("adapter"), std::string::npos) << s.error_message();
  s = Load("wrong-model", root_ + "/adapters/llm_r4", nullptr, "no-such-model");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  ASSERT_TRUE(Load("twice", root_ + "/adapters/llm_r4", nullptr).ok());
  s = Load("twice", root_ + "/adapters/llm_r4", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_TRUE(Unload("twice").ok());
  // Still serving.
  Generate("", &s);
  EXPECT_TRUE(s.ok());
}

TEST_F(AdaptersE2E, VlmctlManagesAdapters) {
  std::vector<std::string> base = {VlmctlBinary(), "--addr", server_->address()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  };
  ProcessResult r = run({"adapters", "load", "cli", root_ + "/adapters/llm_r4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("loaded cli for gqa (rank 4"), std::string::npos) << r.out;
  r = run({"adapters", "list"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("cli"), std::string::npos) << r.out;
  r = run({"adapters", "list", "--json"});
  EXPECT_NE(r.out.find("\"name\":\"cli\""), std::string::npos) << r.out;
  r = run({"infer", "--adapter", "cli", "--max-new-tokens", "3", "--temperature", "0", kPrompt});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"adapters", "load", "cli", root_ + "/adapters/llm_r4"});
  EXPECT_EQ(r.exit_code, 4);  // ALREADY_EXISTS
  EXPECT_NE(r.err.find("ALREADY_EXISTS"), std::string::npos) << r.err;
  r = run({"adapters", "unload", "cli"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "unloaded cli\n");
}

TEST(AdaptersPreload, ConfigAdaptersAreLoadedAtStart) {
  TempDir dir;
  fs::copy(FixtureAdapter(), dir.Join("llm_r4"), fs::copy_options::recursive);
  std::string yaml = "models:\n  gqa: " + BaseModel() + "\nallowed_roots: [" + dir.path() +
                     "]\nadapters:\n  pre:\n    path: " + dir.Join("llm_r4") + "\n    model: gqa\n";
  std::string error;
  auto server = ServerProcess::Start(yaml, dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  grpc::ClientContext ctx;
  v1::ListAdaptersResponse out;
  ASSERT_TRUE(server->Stub()->ListAdapters(&ctx, v1::ListAdaptersRequest(), &out).ok());
  ASSERT_EQ(out.adapters_size(), 1);
  EXPECT_EQ(out.adapters(0).name(), "pre");
  // A bad preloaded adapter stops the start with a message naming it.
  std::string bad = "models:\n  gqa: " + BaseModel() + "\nallowed_roots: [" + dir.path() +
                    "]\nadapters:\n  broken:\n    path: " + dir.Join("missing") + "\n";
  EXPECT_EQ(ServerProcess::Start(bad, dir.path(), {}, &error), nullptr);
  EXPECT_NE(error.find("adapters.broken"), std::string::npos) << error;
}

}  // namespace
}  // namespace vlmd::e2e
