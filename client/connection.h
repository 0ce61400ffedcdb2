// How vlmctl reaches the server: address, TLS files, bearer token and deadline, from flags
// or the environment (VLMD_ADDR, VLMD_TOKEN, VLMD_CA, VLMD_CERT, VLMD_KEY, ...).
#pragma once

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace vlmctl {

// Connection settings shared by every command.
struct ClientOptions {
  std::string address = "127.0.0.1:50051";
  std::string token;            // sent as "authorization: Bearer <token>"
  std::string ca;               // PEM CA that signed the server certificate (enables TLS)
  std::string cert;             // PEM client certificate, for mutual TLS
  std::string key;              // PEM client private key, for mutual TLS
  std::string tls_server_name;  // expected name in the server certificate (override)
  bool tls = false;             // TLS with the system's roots when no --ca is given
  double timeout_s = 300;       // deadline of each call; 0 = none
};

// Registers the global flags (with their environment variables) on `app`.
void AddConnectionFlags(CLI::App& app, ClientOptions* options);

// A channel with TLS when --tls, --ca or --cert is given. Returns nullptr and prints the
// reason when a certificate file cannot be read.
std::shared_ptr<grpc::Channel> Connect(const ClientOptions& options);

// Puts the token and the deadline on a call.
void PrepareContext(const ClientOptions& options, grpc::ClientContext* context);
// Puts only the token on a call: streams that follow a job or an evaluation run as long as
// it does (the client stops them with Ctrl-C).
void PrepareStreamContext(const ClientOptions& options, grpc::ClientContext* context);

}  // namespace vlmctl
