// vlmctl health: the standard gRPC health check (grpc.health.v1).
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "client/commands.h"
#include "client/output.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace vlmctl {
namespace {

namespace health = grpc::health::v1;

struct HealthFlags {
  std::string service;  // "" = the whole server
  double wait_s = 0;    // poll until SERVING for this long
};

// One Check; the status name ("SERVING", ...) or the call's error.
grpc::Status CheckOnce(const ClientOptions& options, health::Health::Stub& stub,
                       const std::string& service, health::HealthCheckResponse* response) {
  grpc::ClientContext context;
  PrepareContext(options, &context);
  health::HealthCheckRequest request;
  request.set_service(service);
  return stub.Check(&context, request, response);
}

int Run(const HealthFlags& f, const ClientOptions& options) {
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = health::Health::NewStub(channel);
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(f.wait_s * 1000));
  while (true) {
    health::HealthCheckResponse response;
    grpc::Status status = CheckOnce(options, *stub, f.service, &response);
    bool serving = status.ok() && response.status() == health::HealthCheckResponse::SERVING;
    if (serving || std::chrono::steady_clock::now() >= until) {
      if (!status.ok()) return ReportError(status);
      std::printf("%s\n",
                  health::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
      return serving ? kExitOk : kExitUnavailable;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

void AddHealthCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("health", "Check the server's health (exit 0 when SERVING)");
  auto f = std::make_shared<HealthFlags>();
  cmd->add_option("--service", f->service, "Service name, e.g. vlmd.v1.Inference (default: all)");
  cmd->add_option("--wait", f->wait_s, "Retry until SERVING for up to this many seconds");
  cmd->callback([f, &options, run] { *run = [f, &options] { return Run(*f, options); }; });
}

}  // namespace vlmctl
