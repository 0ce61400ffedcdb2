// End to end: what operators rely on — health, reflection, /metrics (and a taken metrics
// port), graceful shutdown on SIGTERM — against real `vlmd serve` processes.
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/common/http_client.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
namespace health = grpc::health::v1;
namespace reflection = grpc::reflection::v1alpha;

std::string ModelYaml() { return "models:\n  tiny: " + TinyModelDir() + "\n"; }

// The value of the first sample line starting with `series` ("name{labels}"), or -1.
double Sample(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

class OpsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = ServerProcess::Start(ModelYaml(), dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << error_; }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_;
};

TempDir* OpsE2E::dir_ = nullptr;
ServerProcess* OpsE2E::server_ = nullptr;
std::string OpsE2E::error_;

TEST_F(OpsE2E, HealthIsServingAfterLoad) {
  auto stub = health::Health::NewStub(server_->Channel());
  for (const char* service : {"", "vlmd.v1.Inference"}) {
    grpc::ClientContext ctx;
    health::HealthCheckRequest request;
    request.set_service(service);
    health::HealthCheckResponse response;
    ASSERT_TRUE(stub->Check(&ctx, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext ctx;
  health::HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  health::HealthCheckResponse response;
  EXPECT_EQ(stub->Check(&ctx, unknown, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(OpsE2E, ReflectionDescribesTheService) {
  auto stub = reflection::ServerReflection::NewStub(server_->Channel());
  grpc::ClientContext ctx;
  auto stream = stub->ServerReflectionInfo(&ctx);
  reflection::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  reflection::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::set<std::string> services;
  for (const auto& s : listed.list_services_response().service()) services.insert(s.name());
  EXPECT_TRUE(services.count("vlmd.v1.Inference")) << listed.DebugString();
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));
  reflection::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("vlmd.v1.Inference");
  ASSERT_TRUE(stream->Write(symbol));
  reflection::ServerReflectionResponse files;
  ASSERT_TRUE(stream->Read(&files));
  stream->WritesDone();
  bool found = false;
  for (const std::string& bytes : files.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.name() != "vlmd/v1/inference.proto") continue;
    found = true;
    ASSERT_EQ(file.service_size(), 1);
    EXPECT_EQ(file.service(0).method_size(), 6);
  }
  EXPECT_TRUE(found) << files.DebugString();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(OpsE2E, MetricsFamiliesMoveWithTraffic) {
  ASSERT_GT(server_->metrics_port(), 0) << server_->Log();
  testing::HttpResponse before = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(before.status, 200);
  auto stub = server_->Stub();
  v1::InferResponse out;
  ASSERT_TRUE(Infer(*stub, TextRequest("Metrics please.", 5), &out).ok());
  StreamResult streamed = InferStream(*stub, TextRequest("And streamed.", 5));
  ASSERT_TRUE(streamed.status.ok());
  v1::InferRequest bad = TextRequest("x", 2);
  bad.set_model("nope");
  Infer(*stub, bad, &out);
  testing::HttpResponse after = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(after.status, 200);
  const std::string& m = after.body;
  EXPECT_GT(Sample(m, "vlmd_requests_total{code=\"OK\",method=\"Infer\"}"),
            Sample(before.body, "vlmd_requests_total{code=\"OK\",method=\"Infer\"}"));
  EXPECT_GE(Sample(m, "vlmd_requests_total{code=\"OK\",method=\"InferStream\"}"), 1);
  EXPECT_GE(Sample(m, "vlmd_requests_total{code=\"NOT_FOUND\",method=\"Infer\"}"), 1);
  EXPECT_GT(Sample(m, "vlmd_prompt_tokens_total{model=\"tiny\"}"), 0);
  EXPECT_GE(Sample(m, "vlmd_image_tokens_total{model=\"tiny\"}"), 0);
  EXPECT_GE(Sample(m, "vlmd_generation_tokens_total{model=\"tiny\"}"), 2);
  for (const char* h : {"vlmd_request_duration_seconds", "vlmd_request_queue_seconds",
                        "vlmd_time_to_first_token_seconds", "vlmd_time_per_output_token_seconds"}) {
    EXPECT_GE(Sample(m, std::string(h) + "_count{model=\"tiny\"}"), 1) << h;
  }
  for (const char* g : {"vlmd_requests_running", "vlmd_requests_waiting", "vlmd_batch_size",
                        "vlmd_kv_cache_usage_ratio", "vlmd_adapters_loaded"}) {
    EXPECT_EQ(Sample(m, std::string(g) + "{model=\"tiny\"}"), 0) << g << "\n" << m;
  }
  EXPECT_GE(Sample(m, "vlmd_model_load_seconds{model=\"tiny\"}"), 0);
  EXPECT_TRUE(
      std::regex_search(m, std::regex("\nvlmd_build_info\\{[^}]*version=\"[^\"]+\"[^}]*\\} 1")))
      << m;
}

TEST(OpsAlone, TakenMetricsPortIsLoggedAndServingContinues) {
  int port = 0;
  int fd = testing::OccupyPort(&port);
  ASSERT_GE(fd, 0);
  TempDir dir;
  ServerOptions options;
  options.metrics_listen = "127.0.0.1:" + std::to_string(port);
  std::string error;
  auto server = ServerProcess::Start(ModelYaml(), dir.path(), options, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(server->metrics_address(), "");
  v1::InferResponse out;
  grpc::Status s = Infer(*server->Stub(), TextRequest("Still here?", 3), &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(
      server->Log().find("metrics endpoint could not start on 127.0.0.1:" + std::to_string(port)),
      std::string::npos)
      << server->Log();
  close(fd);
}

TEST(OpsAlone, SigtermDrainsInFlightRequests) {
  TempDir dir;
  std::string error;
  auto server =
      ServerProcess::Start(ModelYaml() + "shutdown_grace_seconds: 60\n", dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  auto stub = server->Stub();
  v1::InferRequest request = TextRequest("Keep talking.", 60);
  request.mutable_params()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  auto reader = stub->InferStream(&ctx, request);
  v1::InferStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // running
  kill(server->pid(), SIGTERM);
  int tokens = msg.delta().token_ids_size();
  bool done = false;
  while (reader->Read(&msg)) {
    if (msg.has_delta()) tokens += msg.delta().token_ids_size();
    done = done || msg.has_done();
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(done);
  EXPECT_EQ(tokens, 60);  // finished within the grace period
  EXPECT_EQ(server->Wait(), 0) << server->Log();
  EXPECT_NE(server->Log().find("draining"), std::string::npos);
}

}  // namespace
}  // namespace vlmd::e2e
