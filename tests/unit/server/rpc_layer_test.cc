// Unit test of the gRPC layer alone: the real InferenceRpcService, reactors, auth, limits and
// listeners on loopback, in front of a scripted stand-in for the engine facade. It checks
// what the server layer owns (status mapping, streaming flow, cancellation and deadline
// propagation, auth, concurrency) without a model; tests/e2e runs the real engine.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server/inference_rpc.h"
#include "server/listeners.h"

namespace vlmd::server {
namespace {

// Scripted engine: the prompt's text picks the behaviour. "hold" keeps the request until it
// is cancelled; "fail" is rejected at Submit; "throw" throws; anything else streams the
// words of the text as chunks and finishes.
class ScriptedInference final : public api::InferenceService {
 public:
  ~ScriptedInference() override {
    for (std::thread& t : threads_) t.join();
  }

  Status Submit(api::InferRequest request, std::shared_ptr<api::InferSink> sink,
                std::shared_ptr<api::CancelHandle>* cancel) override {
    std::string text = request.prompt.messages.back().content.back().text;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = request;
    }
    if (text == "fail") return absl::InvalidArgumentError("temperature must be in [0, 100]");
    if (text == "throw") throw std::runtime_error("engine exploded");
    auto handle = std::make_shared<Handle>(this);
    *cancel = handle;
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, text, sink, handle] { Run(text, sink, handle); });
    return absl::OkStatus();
  }

  std::vector<api::ModelInfo> ListModels() const override {
    api::ModelInfo m;
    m.name = "tiny";
    m.min_max_pixels = "3136..50176";
    return {m, api::ModelInfo{"second"}};
  }
  StatusOr<api::AdapterInfo> LoadAdapter(const std::string& name, const std::string& path,
                                         const std::string& model) override {
    if (path.rfind("/allowed", 0) != 0) return absl::PermissionDeniedError(path + " outside");
    api::AdapterInfo a;
    a.name = name;
    a.path = path;
    a.model = model.empty() ? "tiny" : model;
    a.rank = 4;
    return a;
  }
  Status UnloadAdapter(const std::string& name) override {
    return absl::NotFoundError("unknown adapter '" + name + "'");
  }
  std::vector<api::AdapterInfo> ListAdapters() const override { return {}; }
  StatusOr<api::ModelInfo> AddModel(const api::ModelSpec&) override {
    return absl::UnimplementedError("no");
  }
  std::vector<api::EngineStats> Stats() const override { return {}; }
  void Shutdown(std::chrono::milliseconds) override {}

  int cancels() const { return cancels_.load(); }
  api::InferRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  struct Handle : api::CancelHandle {
    explicit Handle(ScriptedInference* owner) : owner(owner) {}
    void Cancel() override {
      if (!cancelled.exchange(true)) owner->cancels_++;
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
    ScriptedInference* owner;
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    std::condition_variable cv;
  };

  void Run(const std::string& text, std::shared_ptr<api::InferSink> sink,
           std::shared_ptr<Handle> handle) {
    if (text == "hold") {
      std::unique_lock<std::mutex> lock(handle->mu);
      handle->cv.wait(lock, [&] { return handle->cancelled.load(); });
      sink->OnDone(absl::CancelledError("request cancelled by the client"));
      return;
    }
    GenerationResult result;
    int32_t id = 0;
    for (size_t start = 0; start < text.size();) {
      size_t end = std::min(text.find(' ', start), text.size());
      std::string piece = text.substr(start, end - start + (end < text.size() ? 1 : 0));
      sink->OnChunk(api::InferChunk{piece, {id}, {}});
      result.token_ids.push_back(id++);
      result.text += piece;
      start = end + 1;
    }
    result.finish_reason = FinishReason::kStop;
    result.usage = {10, 0, static_cast<int64_t>(result.token_ids.size())};
    sink->OnDone(result);
  }

  mutable std::mutex mu_;
  std::vector<std::thread> threads_;  // guarded by mu_
  api::InferRequest last_;            // guarded by mu_
  std::atomic<int> cancels_{0};
};

class RpcLayerTest : public ::testing::Test {
 protected:
  void Start(const std::vector<TokenEntry>& tokens = {}, int max_concurrent = 0,
             bool ready = true) {
    auth_ = std::make_unique<Authenticator>(tokens);
    env_ = ServiceEnv{auth_.get(), &metrics_, &state_, &pool_, max_concurrent};
    rpc_ = std::make_unique<InferenceRpcService>(env_);
    ServeConfig config;
    config.listen = "127.0.0.1:0";
    config.limits.max_request_bytes = 1 << 20;
    StatusOr<GrpcListener> l = StartGrpcServer(config, {rpc_.get()}, {"vlmd.v1.Inference"});
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
    if (ready) MakeReady();
    channel_ = grpc::CreateChannel(listener_.address, grpc::InsecureChannelCredentials());
    stub_ = v1::Inference::NewStub(channel_);
  }
  void MakeReady() {
    state_.SetService(&engine_);
    SetHealth(*listener_.server, {"vlmd.v1.Inference"}, true);
  }
  void TearDown() override {
    if (listener_.server) {
      listener_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
    pool_.Stop();
  }
  static v1::InferRequest Request(const std::string& text) {
    v1::InferRequest r;
    v1::ChatMessage* m = r.add_messages();
    m->set_role("user");
    m->add_content()->set_text(text);
    return r;
  }
  grpc::Status Infer(const std::string& text, v1::InferResponse* out,
                     const std::string& token = "") {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    return stub_->Infer(&ctx, Request(text), out);
  }

  ScriptedInference engine_;
  ServerMetrics metrics_{"test"};
  ServingState state_;
  ThreadPool pool_{2};
  std::unique_ptr<Authenticator> auth_;
  ServiceEnv env_;
  std::unique_ptr<InferenceRpcService> rpc_;
  GrpcListener listener_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(RpcLayerTest, UnavailableAndNotServingUntilReady) {
  Start({}, 0, /*ready=*/false);
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "vlmd.v1.Inference"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING) << service;
  }
  v1::InferResponse out;
  grpc::Status s = Infer("hello", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("loading"), std::string::npos);
  MakeReady();
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(Infer("hello", &out).ok());
}

TEST_F(RpcLayerTest, UnaryInferFillsTheResponse) {
  Start();
  v1::InferResponse out;
  grpc::Status s = Infer("one two three", &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.text(), "one two three");
  EXPECT_EQ(out.token_ids_size(), 3);
  EXPECT_EQ(out.model(), "tiny");  // empty model = the first
  EXPECT_EQ(out.request_id().rfind("req-", 0), 0u) << out.request_id();
  EXPECT_EQ(out.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(out.usage().completion_tokens(), 3);
  EXPECT_FALSE(engine_.last().deadline.has_value());  // no client deadline
}

TEST_F(RpcLayerTest, StreamDeltasConcatenateThenDone) {
  Start();
  std::string words;
  for (int i = 0; i < 200; ++i) words += "w" + std::to_string(i) + (i + 1 < 200 ? " " : "");
  grpc::ClientContext ctx;
  auto reader = stub_->InferStream(&ctx, Request(words));
  v1::InferStreamResponse msg;
  std::string text;
  int tokens = 0, dones = 0;
  while (reader->Read(&msg)) {
    if (msg.has_delta()) {
      EXPECT_EQ(dones, 0) << "delta after done";
      text += msg.delta().text();
      tokens += msg.delta().token_ids_size();
    } else if (msg.has_done()) {
      ++dones;
      EXPECT_EQ(msg.done().usage().completion_tokens(), 200);
      EXPECT_EQ(msg.done().finish_reason(), v1::FINISH_REASON_STOP);
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, words);
  EXPECT_EQ(tokens, 200);
  EXPECT_EQ(dones, 1);
}

TEST_F(RpcLayerTest, SubmitErrorsAndExceptionsKeepTheirMeaning) {
  Start();
  v1::InferResponse out;
  grpc::Status s = Infer("fail", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "temperature must be in [0, 100]");
  s = Infer("throw", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(s.error_message().find("engine exploded"), std::string::npos);
  grpc::ClientContext ctx;
  v1::InferRequest empty_part = Request("x");
  empty_part.mutable_messages(0)->add_content();
  s = stub_->Infer(&ctx, empty_part, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("messages[0].content[1]"), std::string::npos);
  EXPECT_TRUE(Infer("still serving", &out).ok());
  std::string text = metrics_.RenderText();
  EXPECT_NE(text.find("vlmd_requests_total{code=\"INTERNAL\",method=\"Infer\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(RpcLayerTest, ClientCancelReachesTheEngine) {
  Start();
  grpc::ClientContext ctx;
  auto reader = stub_->InferStream(&ctx, Request("hold"));
  for (int i = 0; i < 200 && engine_.last().prompt.messages.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ctx.TryCancel();
  v1::InferStreamResponse msg;
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 200 && engine_.cancels() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine_.cancels(), 1);
}

TEST_F(RpcLayerTest, DeadlineReachesTheEngine) {
  Start();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  v1::InferResponse out;
  grpc::Status s = stub_->Infer(&ctx, Request("hold"), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  api::InferRequest seen = engine_.last();
  ASSERT_TRUE(seen.deadline.has_value());
  for (int i = 0; i < 200 && engine_.cancels() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine_.cancels(), 1);  // OnCancel fired at the deadline
}

TEST_F(RpcLayerTest, ConcurrencyLimit) {
  Start({}, /*max_concurrent=*/1);
  grpc::ClientContext held;
  auto reader = stub_->InferStream(&held, Request("hold"));
  for (int i = 0; i < 200 && engine_.last().prompt.messages.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  v1::InferResponse out;
  grpc::Status s = Infer("second", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("limit 1"), std::string::npos);
  held.TryCancel();
  v1::InferStreamResponse msg;
  while (reader->Read(&msg)) {
  }
  reader->Finish();
  grpc::Status after;
  for (int i = 0; i < 100; ++i) {  // the slot frees when the call's OnDone has run
    after = Infer("third", &out);
    if (after.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(after.ok()) << after.error_message();
}

TEST_F(RpcLayerTest, AuthOnEveryMethod) {
  Start({{"ci", "infer-token-0123456789", Role::kInfer},
         {"ops", "admin-token-0123456789", Role::kAdmin}});
  v1::InferResponse out;
  EXPECT_EQ(Infer("x", &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Infer("x", &out, "wrong-token-0123456789").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Infer("x", &out, "infer-token-0123456789").ok());
  {
    grpc::ClientContext ctx;
    auto reader = stub_->InferStream(&ctx, Request("x"));
    v1::InferStreamResponse msg;
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::LoadAdapterRequest load;
  load.set_name("a");
  load.set_path("/allowed/a");
  v1::LoadAdapterResponse loaded;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer infer-token-0123456789");
    EXPECT_EQ(stub_->LoadAdapter(&ctx, load, &loaded).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer admin-token-0123456789");
    grpc::Status s = stub_->LoadAdapter(&ctx, load, &loaded);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(loaded.adapter().model(), "tiny");
  }
}

TEST_F(RpcLayerTest, ManagementCalls) {
  Start();
  {
    grpc::ClientContext ctx;
    v1::ListModelsResponse models;
    ASSERT_TRUE(stub_->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
    ASSERT_EQ(models.models_size(), 2);
    EXPECT_TRUE(models.models(0).is_default());
    EXPECT_FALSE(models.models(1).is_default());
    EXPECT_EQ(models.models(0).max_pixels(), 50176);
  }
  {
    grpc::ClientContext ctx;
    v1::LoadAdapterRequest load;
    load.set_name("a");
    load.set_path("/etc");
    v1::LoadAdapterResponse out;
    EXPECT_EQ(stub_->LoadAdapter(&ctx, load, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    v1::LoadAdapterRequest load;  // no name
    v1::LoadAdapterResponse out;
    grpc::Status s = stub_->LoadAdapter(&ctx, load, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "adapter name is empty");
  }
  {
    grpc::ClientContext ctx;
    v1::UnloadAdapterRequest unload;
    unload.set_name("ghost");
    v1::UnloadAdapterResponse out;
    grpc::Status s = stub_->UnloadAdapter(&ctx, unload, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "unknown adapter 'ghost'");
  }
}

TEST_F(RpcLayerTest, OversizeRequestIsResourceExhausted) {
  Start();
  v1::InferRequest r = Request(std::string(2 << 20, 'x'));  // over the 1 MiB limit
  grpc::ClientContext ctx;
  v1::InferResponse out;
  EXPECT_EQ(stub_->Infer(&ctx, r, &out).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Infer("fine", &out).ok());
}

}  // namespace
}  // namespace vlmd::server
