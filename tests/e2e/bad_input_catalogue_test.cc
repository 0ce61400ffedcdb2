// End to end: the bad-input catalogue (tests/e2e/catalogue/) against one real `vlmd serve`
// with small limits, bearer tokens, an allowed root full of traps and a preloaded adapter.
// Every row must get its documented status code and a message naming the problem; afterwards
// the server must still be healthy and serve valid requests, and its memory must stay flat
// over further passes of the whole catalogue.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/e2e/catalogue/catalogue.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e::catalogue {
void PrepareAdapterFiles(const Env& env);
namespace {

// Growth of VmRSS allowed between the second and the last pass (allocator caches, gRPC's
// per-thread arenas); a leak of even 1 KiB per request would exceed it over the passes.
constexpr int64_t kRssSlackKiB = 24 * 1024;
constexpr int kPasses = 3;

int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Every '|'-separated alternative of every part; one alternative per part must be present.
std::string MissingParts(const std::string& message, const std::vector<std::string>& parts) {
  std::string missing;
  for (const std::string& part : parts) {
    bool found = false;
    for (absl::string_view alt : absl::StrSplit(part, '|')) {
      found = found || message.find(std::string(alt)) != std::string::npos;
    }
    if (!found) missing += " [" + part + "]";
  }
  return missing;
}

class BadInputCatalogue : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    env_.root = dir_->Join("root");
    env_.outside = dir_->Join("outside");
    env_.model = "tiny";
    env_.adapter_model = "gqa";
    PrepareFiles(env_);
    PrepareAdapterFiles(env_);
    std::string yaml = "models:\n  tiny: " + TinyModelDir() + "\n  gqa: " + SourceDir() +
                       "/tests/fixtures/models/gqa_tied\n"
                       "adapters:\n  fixture: {path: " +
                       env_.root +
                       "/adapters/good, model: gqa}\n"
                       "allowed_roots: [" +
                       env_.root +
                       "]\n"
                       "limits:\n  max_request_bytes: 1048576\n  max_image_bytes: 65536\n"
                       "  max_image_pixels: 100000\n  max_images: 4\n  max_pixels: 200704\n"
                       "  max_prompt_tokens: 300\n  max_new_tokens: 64\n"
                       "auth:\n  tokens:\n"
                       "    - {name: catalogue-admin, token: " +
                       std::string(kAdminToken) +
                       ", role: admin}\n"
                       "    - {name: catalogue-infer, token: " +
                       std::string(kInferToken) + ", role: infer}\n";
    server_ = ServerProcess::Start(yaml, dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << error_; }

  static std::vector<BadCase> AllCases() {
    std::vector<BadCase> cases;
    AddImageCases(env_, &cases);
    AddRequestCases(env_, &cases);
    // Every inference row also goes through the streaming method.
    const size_t inference_rows = cases.size();
    for (size_t i = 0; i < inference_rows; ++i) {
      BadCase stream = cases[i];
      stream.name += " (stream)";
      stream.method = kInferStream;
      cases.push_back(stream);
    }
    AddAdapterCases(env_, &cases);
    AddWireAndAuthCases(env_, &cases);
    return cases;
  }

  // Sends every case once; returns the failures, one per line.
  std::string RunPass(const std::vector<BadCase>& cases) {
    std::ostringstream failures;
    for (const BadCase& c : cases) {
      CallResult r = Send(server_->Channel().get(), c);
      const std::string message = r.status.error_message();
      std::string missing = MissingParts(message, c.message);
      if (r.status.error_code() != c.code || !missing.empty()) {
        failures << c.name << ": got " << r.status.error_code() << " '" << message.substr(0, 300)
                 << "', want " << c.code << missing << "\n";
      }
    }
    return failures.str();
  }

  void ExpectHealthyAndServing() {
    auto health = grpc::health::v1::Health::NewStub(server_->Channel());
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse h;
    ASSERT_TRUE(health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &h).ok());
    EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    auto stub = server_->Stub();
    v1::InferRequest good = WithImage([](v1::Image* i) { i->set_path(env_.root + "/tiny.png"); });
    v1::InferResponse out;
    grpc::Status s = Infer(*stub, good, &out, 120, kInferToken);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_GT(out.usage().image_tokens(), 0);
    v1::InferRequest adapted = Text();
    adapted.set_model("gqa");
    adapted.set_adapter("fixture");
    StreamResult stream = InferStream(*stub, adapted, 120, kInferToken);
    EXPECT_TRUE(stream.status.ok()) << stream.status.error_message();
    EXPECT_EQ(stream.dones, 1);
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_;
  static Env env_;
};

TempDir* BadInputCatalogue::dir_ = nullptr;
ServerProcess* BadInputCatalogue::server_ = nullptr;
std::string BadInputCatalogue::error_;
Env BadInputCatalogue::env_;

TEST_F(BadInputCatalogue, EveryRowGetsItsCodeAndMessageAndTheServerStaysHealthy) {
  std::vector<BadCase> cases = AllCases();
  std::set<std::string> names, requests;
  for (const BadCase& c : cases) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate row name: " << c.name;
    EXPECT_TRUE(
        requests.insert(c.method + '\0' + c.request + '\0' + c.token + '\0' + c.raw_authorization)
            .second)
        << c.name << " sends the same request as an earlier row";
  }
  EXPECT_EQ(requests.size(), cases.size()) << "two rows send the same request";
  EXPECT_GE(cases.size(), 200u);
  std::cout << "catalogue: " << cases.size() << " invalid requests\n";

  std::vector<int64_t> rss;
  for (int pass = 0; pass < kPasses; ++pass) {
    std::string failures = RunPass(cases);
    EXPECT_TRUE(failures.empty()) << "pass " << pass + 1 << ":\n" << failures;
    ExpectHealthyAndServing();
    rss.push_back(RssKiB(server_->pid()));
    std::cout << "pass " << pass + 1 << ": server VmRSS " << rss.back() << " KiB\n";
  }
  EXPECT_LE(rss.back() - rss[1], kRssSlackKiB)
      << "server memory grew from " << rss[1] << " KiB to " << rss.back() << " KiB";
  std::string log = server_->Log();
  EXPECT_EQ(log.find(kAdminToken), std::string::npos) << "a token reached the log";
  EXPECT_EQ(log.find(kInferToken), std::string::npos) << "a token reached the log";
}

}  // namespace
}  // namespace vlmd::e2e::catalogue
