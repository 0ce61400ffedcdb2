#include "server/listeners.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "core/base/file_util.h"
#include "core/base/logging.h"

namespace vlmd::server {
namespace {

StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat(what, ": ", text.status().message()));
  }
  if (text->find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return text;
}

}  // namespace

StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsConfig& tls) {
  if (tls.cert.empty()) return grpc::InsecureServerCredentials();
  ASSIGN_OR_RETURN(std::string cert, ReadPem(tls.cert, "tls.cert"));
  ASSIGN_OR_RETURN(std::string key, ReadPem(tls.key, "tls.key"));
  grpc::SslServerCredentialsOptions options(
      tls.client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back({key, cert});
  if (!tls.client_ca.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem(tls.client_ca, "tls.client_ca"));
  }
  return grpc::SslServerCredentials(options);
}

std::string WithPort(const std::string& address, int port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || address.back() == ']') return absl::StrCat(address, ":", port);
  return absl::StrCat(address.substr(0, colon), ":", port);
}

StatusOr<GrpcListener> StartGrpcServer(const ServeConfig& config,
                                       const std::vector<grpc::Service*>& services,
                                       const std::vector<std::string>& health_names) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   MakeServerCredentials(config.tls));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.limits.max_request_bytes));
  for (grpc::Service* s : services) builder.RegisterService(s);
  GrpcListener out;
  out.server = builder.BuildAndStart();
  if (out.server == nullptr || port == 0) {
    if (out.server) out.server->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", config.listen,
                     " (address in use or invalid, or unusable TLS certificate/key)"));
  }
  out.address = WithPort(config.listen, port);
  SetHealth(*out.server, health_names, false);
  return out;
}

void SetHealth(grpc::Server& server, const std::vector<std::string>& names, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
  for (const std::string& name : names) health->SetServingStatus(name, serving);
}

MetricsListener StartMetricsListener(const std::string& address,
                                     const std::shared_ptr<prometheus::Collectable>& collectable) {
  MetricsListener out;
  if (address.empty()) {
    VLMD_LOG(Info) << "metrics endpoint disabled (metrics.listen is empty)";
    return out;
  }
  StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(address, collectable);
  if (!server.ok()) {
    VLMD_LOG(Error) << server.status().message() << "; serving continues without /metrics";
    return out;
  }
  out.server = std::move(*server);
  const bool bare_port = address.find(':') == std::string::npos;
  out.address = WithPort(bare_port ? "0.0.0.0:0" : address, out.server->port());
  VLMD_LOG(Info) << "metrics at http://" << out.address << "/metrics";
  return out;
}

}  // namespace vlmd::server
