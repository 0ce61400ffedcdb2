// The two listeners of `vlmd serve`: the gRPC server (TLS or mTLS, message size limit,
// health service, reflection) and the Prometheus HTTP endpoint. Call from one thread at
// startup; the returned servers are themselves thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/collectable.h>

#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "server/config.h"
#include "server/metrics_http.h"

namespace vlmd::server {

// Plaintext when tls.cert is empty; TLS with the cert and key; mutual TLS (clients must
// present a certificate signed by tls.client_ca) when client_ca is set. Errors name the file.
StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsConfig& tls);

// A started gRPC server and the address it listens on (the real port when 0 was asked).
struct GrpcListener {
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

// Builds and starts the gRPC server with `services`, the health service (every status set to
// NOT_SERVING until SetHealth(true)) and server reflection. UNAVAILABLE when it cannot listen.
StatusOr<GrpcListener> StartGrpcServer(const ServeConfig& config,
                                       const std::vector<grpc::Service*>& services,
                                       const std::vector<std::string>& health_names);

// Sets the health status of the whole server ("") and of each of `names`.
void SetHealth(grpc::Server& server, const std::vector<std::string>& names, bool serving);

// A started metrics endpoint and its address.
struct MetricsListener {
  std::unique_ptr<MetricsHttpServer> server;
  std::string address;  // empty when not listening
};

// Serves `collectable` at http://<address>/metrics. An empty address disables it. When the
// listener cannot start (port taken, bind failure) the error is logged and an empty
// MetricsListener comes back: inference keeps working without metrics.
MetricsListener StartMetricsListener(const std::string& address,
                                     const std::shared_ptr<prometheus::Collectable>& collectable);

// "host:port" with the port replaced (keeps IPv6 brackets): ("[::]:0", 41234) -> "[::]:41234".
std::string WithPort(const std::string& address, int port);

}  // namespace vlmd::server
