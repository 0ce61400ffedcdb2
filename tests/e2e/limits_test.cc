// End to end: limits, bad input and the release of batch slots by cancelled requests and
// passed deadlines, against a real `vlmd serve` with one running slot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "tests/common/http_client.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using Clock = std::chrono::steady_clock;

// Long enough that a request running to its end would take far longer than the checks below
// allow a follower to wait.
constexpr int kLongTokens = 16000;
constexpr double kPromptStartMs = 3000;  // generous bound on a freed slot's queue time

class LimitsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    root_ = dir_->Join("root");
    std::filesystem::create_directories(root_);
    std::filesystem::create_directories(dir_->Join("outside"));
    std::string fixtures = SourceDir() + "/tests/fixtures/images/";
    WriteFile(root_ + "/tiny.png", ReadFile(fixtures + "tiny_20x15.png"));
    WriteFile(root_ + "/photo.jpg", ReadFile(fixtures + "photo_640x480.jpg"));
    WriteFile(dir_->Join("outside/secret.png"), ReadFile(fixtures + "tiny_20x15.png"));
    symlink(dir_->Join("outside/secret.png").c_str(), (root_ + "/escape.png").c_str());
    std::string yaml = "models:\n  tiny: " + TinyModelDir() + "\nallowed_roots: [" + root_ +
                       "]\nlimits:\n  max_running: 1\n  queue_size: 8\n"
                       "  max_prompt_tokens: 200\n  max_image_pixels: 100000\n"
                       "  max_request_bytes: 1048576\n  max_new_tokens: 16384\n";
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
  static v1::InferRequest LongRequest() {
    v1::InferRequest r = TextRequest("Go on and on.", kLongTokens);
    r.mutable_params()->set_ignore_eos(true);
    return r;
  }
  static v1::InferRequest ImageRequest(const std::function<void(v1::Image*)>& set) {
    v1::InferRequest r = TextRequest("What is this?", 4);
    set(r.mutable_messages(0)->add_content()->mutable_image());
    return r;
  }
  // A short request right after a freed slot: it must run at once, not after kLongTokens.
  void ExpectFollowerRunsAtOnce() {
    auto start = Clock::now();
    v1::InferResponse r;
    grpc::Status s = Infer(*stub_, TextRequest("Next!", 4), &r, 60);
    double waited_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LT(r.timings().queue_ms(), kPromptStartMs);
    EXPECT_LT(waited_ms, kPromptStartMs + 5000);
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_, root_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TempDir* LimitsE2E::dir_ = nullptr;
ServerProcess* LimitsE2E::server_ = nullptr;
std::string LimitsE2E::error_, LimitsE2E::root_;

TEST_F(LimitsE2E, LongRequestReallyIsLong) {
  // Calibrates the two tests below: kLongTokens take much longer than kPromptStartMs.
  v1::InferRequest r = LongRequest();
  r.mutable_params()->set_max_new_tokens(40);
  v1::InferResponse out;
  ASSERT_TRUE(Infer(*stub_, r, &out).ok());
  double per_token_ms = out.timings().total_ms() / 40.0;
  EXPECT_GT(per_token_ms * kLongTokens, 2 * kPromptStartMs)
      << "per token " << per_token_ms << " ms: raise kLongTokens";
}

TEST_F(LimitsE2E, CancelledStreamFreesItsSlot) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stub_->InferStream(&ctx, LongRequest());
  v1::InferStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));  // generating: it holds the only slot
  ASSERT_TRUE(first.has_delta());
  ctx.TryCancel();
  v1::InferStreamResponse rest;
  while (reader->Read(&rest)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ExpectFollowerRunsAtOnce();
}

TEST_F(LimitsE2E, KilledClientFreesItsSlot) {
  // A real client process that dies mid-stream: the server sees the connection drop.
  BackgroundProcess client(
      {VlmctlBinary(), "--addr", server_->address(), "--timeout", "300", "infer", "--stream",
       "--ignore-eos", "--max-new-tokens", std::to_string(kLongTokens), "Talk forever."},
      {});
  double running = 0;
  for (int i = 0; i < 300 && running < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::string m = testing::HttpGet(server_->metrics_port(), "/metrics").body;
    size_t at = m.find("\nvlmd_requests_running{model=\"tiny\"} ");
    if (at != std::string::npos) running = std::stod(m.substr(m.find("} ", at) + 2));
  }
  ASSERT_EQ(running, 1) << "the client's request never started";
  client.Kill(SIGKILL);
  EXPECT_EQ(client.Wait(), 128 + SIGKILL);
  ExpectFollowerRunsAtOnce();
}

TEST_F(LimitsE2E, PassedDeadlineFreesItsSlot) {
  v1::InferResponse out;
  grpc::Status s = Infer(*stub_, LongRequest(), &out, /*timeout_s=*/1.0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectFollowerRunsAtOnce();
}

TEST_F(LimitsE2E, QueuedRequestWaitsForTheSlot) {
  // With one slot, a second request queues behind a running one and runs when it ends.
  std::thread runner([this] {
    v1::InferRequest r = LongRequest();
    r.mutable_params()->set_max_new_tokens(30);
    v1::InferResponse out;
    EXPECT_TRUE(Infer(*server_->Stub(), r, &out).ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::InferResponse second;
  EXPECT_TRUE(Infer(*stub_, TextRequest("Queued.", 2), &second).ok());
  runner.join();
}

struct BadCase {
  const char* name;
  v1::InferRequest request;
  grpc::StatusCode code;
  std::string message;  // a substring the error must contain
};

TEST_F(LimitsE2E, BadInputGetsItsCodeAndTheServerKeepsServing) {
  std::vector<BadCase> cases;
  cases.push_back({"corrupt image", ImageRequest([](v1::Image* i) { i->set_data("not an image"); }),
                   grpc::StatusCode::INVALID_ARGUMENT, "image 0"});
  cases.push_back({"too many pixels",
                   ImageRequest([](v1::Image* i) { i->set_path(root_ + "/photo.jpg"); }),
                   grpc::StatusCode::INVALID_ARGUMENT, "100000"});
  std::string words;
  for (int i = 0; i < 300; ++i) words += "hello ";
  cases.push_back({"too many prompt tokens", TextRequest(words, 4),
                   grpc::StatusCode::INVALID_ARGUMENT, "over the limit of 200"});
  v1::InferRequest cold = TextRequest("hi", 4);
  cold.mutable_params()->set_temperature(-0.5);
  cases.push_back(
      {"negative temperature", cold, grpc::StatusCode::INVALID_ARGUMENT, "temperature"});
  v1::InferRequest wide = TextRequest("hi", 4);
  wide.mutable_params()->set_top_p(1.5);
  cases.push_back({"top_p over 1", wide, grpc::StatusCode::INVALID_ARGUMENT, "top_p"});
  v1::InferRequest model = TextRequest("hi", 4);
  model.set_model("no-such-model");
  cases.push_back({"unknown model", model, grpc::StatusCode::NOT_FOUND, "no-such-model"});
  v1::InferRequest adapter = TextRequest("hi", 4);
  adapter.set_adapter("no-such-adapter");
  cases.push_back({"unknown adapter", adapter, grpc::StatusCode::NOT_FOUND, "no-such-adapter"});
  cases.push_back({"path outside the roots", ImageRequest([](v1::Image* i) {
                     i->set_path(dir_->Join("outside/secret.png"));
                   }),
                   grpc::StatusCode::PERMISSION_DENIED, "secret.png"});
  cases.push_back({"symlink escaping the roots",
                   ImageRequest([](v1::Image* i) { i->set_path(root_ + "/escape.png"); }),
                   grpc::StatusCode::PERMISSION_DENIED, "escape.png"});
  cases.push_back({"missing file under the roots",
                   ImageRequest([](v1::Image* i) { i->set_path(root_ + "/nothing.png"); }),
                   grpc::StatusCode::NOT_FOUND, "nothing.png"});
  cases.push_back(
      {"no messages", v1::InferRequest(), grpc::StatusCode::INVALID_ARGUMENT, "no messages"});
  cases.push_back({"over max request bytes",
                   ImageRequest([](v1::Image* i) { i->set_data(std::string(2 << 20, 'x')); }),
                   grpc::StatusCode::RESOURCE_EXHAUSTED, "larger than max"});
  for (const BadCase& c : cases) {
    v1::InferResponse out;
    grpc::Status s = Infer(*stub_, c.request, &out);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.message), std::string::npos)
        << c.name << ": " << s.error_message();
    StreamResult stream = InferStream(*stub_, c.request);
    EXPECT_EQ(stream.status.error_code(), c.code) << c.name << " (stream)";
  }
  v1::InferResponse ok;
  grpc::Status s =
      Infer(*stub_, ImageRequest([](v1::Image* i) { i->set_path(root_ + "/tiny.png"); }), &ok);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace vlmd::e2e
