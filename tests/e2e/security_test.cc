// End to end: bearer tokens with roles, TLS and mutual TLS with certificates made by the
// openssl CLI during the test, against real `vlmd serve` processes.
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;

constexpr char kInferToken[] = "infer-7c1d2e3f4a5b6c7d8e9f";
constexpr char kAdminToken[] = "admin-0a9b8c7d6e5f4a3b2c1d";
constexpr char kFileToken[] = "file-00112233445566778899";

std::string ModelYaml() { return "models:\n  tiny: " + TinyModelDir() + "\n"; }

grpc::Status Unload(v1::Inference::Stub& stub, const std::string& token) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::UnloadAdapterRequest r;
  r.set_name("ghost");
  v1::UnloadAdapterResponse out;
  return stub.UnloadAdapter(&ctx, r, &out);
}

TEST(SecurityE2E, BearerTokensAndRoles) {
  TempDir dir;
  WriteFile(dir.Join("tokens.yaml"), std::string("tokens:\n  - {name: from-file, token: ") +
                                         kFileToken + ", role: admin}\n");
  std::string yaml = ModelYaml() + "auth:\n  tokens_file: " + dir.Join("tokens.yaml") +
                     "\n  tokens:\n    - {name: app, token: " + kInferToken +
                     ", role: infer}\n    - {name: ops, token: " + kAdminToken + ", role: admin}\n";
  std::string error;
  auto server = ServerProcess::Start(yaml, dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  auto stub = server->Stub();
  v1::InferResponse out;
  v1::InferRequest request = TextRequest("hello", 2);
  grpc::Status s = Infer(*stub, request, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  s = Infer(*stub, request, &out, 30, "wrong-token-000000000000");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  StreamResult stream = InferStream(*stub, request, 30);
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  s = Infer(*stub, request, &out, 30, kInferToken);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // An infer token may not manage adapters; admin tokens (inline or from the file) may.
  s = Unload(*stub, kInferToken);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kInferToken);
    v1::LoadAdapterRequest load;
    load.set_name("a");
    load.set_path("/tmp");
    v1::LoadAdapterResponse loaded;
    EXPECT_EQ(stub->LoadAdapter(&ctx, load, &loaded).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(Unload(*stub, kAdminToken).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Unload(*stub, kFileToken).error_code(), grpc::StatusCode::NOT_FOUND);
  // Health stays open for load balancers.
  auto health = grpc::health::v1::Health::NewStub(server->Channel());
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse h;
  ASSERT_TRUE(health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  // Tokens never reach the log.
  server->Stop();
  std::string log = server->Log();
  EXPECT_EQ(log.find(kInferToken), std::string::npos);
  EXPECT_EQ(log.find(kAdminToken), std::string::npos);
  EXPECT_EQ(log.find(kFileToken), std::string::npos);
  EXPECT_NE(log.find("authentication on"), std::string::npos) << log;
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const Certificates& c,
                                          bool client_cert) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(c.ca);
  if (client_cert) {
    ssl.pem_cert_chain = ReadFile(c.client_cert);
    ssl.pem_private_key = ReadFile(c.client_key);
  }
  return grpc::CreateChannel(address, grpc::SslCredentials(ssl));
}

grpc::Status Call(std::shared_ptr<grpc::Channel> channel) {
  v1::InferResponse out;
  return Infer(*v1::Inference::NewStub(channel), TextRequest("secure hello", 2), &out, 20);
}

class TlsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(MakeCertificates(dir_.path(), &certs_, &error)) << error;
  }
  std::unique_ptr<ServerProcess> StartTls(bool mutual) {
    std::string yaml = ModelYaml() + "tls:\n  cert: " + certs_.server_cert +
                       "\n  key: " + certs_.server_key + "\n";
    if (mutual) yaml += "  client_ca: " + certs_.ca + "\n";
    std::string error;
    auto server = ServerProcess::Start(yaml, dir_.path(), {}, &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }
  ProcessResult Vlmctl(const ServerProcess& server, bool client_cert) {
    std::vector<std::string> argv = {VlmctlBinary(), "--addr", server.address(), "--ca", certs_.ca,
                                     "--timeout",    "20"};
    if (client_cert)
      argv.insert(argv.end(), {"--cert", certs_.client_cert, "--key", certs_.client_key});
    argv.push_back("health");
    return RunProcess(argv);
  }

  TempDir dir_;
  Certificates certs_;
};

TEST_F(TlsE2E, ServerTls) {
  auto server = StartTls(false);
  ASSERT_NE(server, nullptr);
  grpc::Status s = Call(TlsChannel(server->address(), certs_, false));
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Call(grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(s.ok()) << "a plaintext client reached a TLS server";
  ProcessResult r = Vlmctl(*server, false);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
}

TEST_F(TlsE2E, MutualTls) {
  auto server = StartTls(true);
  ASSERT_NE(server, nullptr);
  grpc::Status s = Call(TlsChannel(server->address(), certs_, true));
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Call(TlsChannel(server->address(), certs_, false));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  ProcessResult with_cert = Vlmctl(*server, true);
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.err;
  ProcessResult without = Vlmctl(*server, false);
  EXPECT_EQ(without.exit_code, 6) << without.out << without.err;
  EXPECT_NE(without.err.find("UNAVAILABLE"), std::string::npos) << without.err;
}

}  // namespace
}  // namespace vlmd::e2e
