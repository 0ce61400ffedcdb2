#include "client/connection.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace vlmctl {
namespace {

// Reads a whole file into *out; prints the problem and returns false when it cannot.
bool ReadPem(const std::string& path, const char* what, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "vlmctl: cannot read %s file '%s'\n", what, path.c_str());
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const ClientOptions& o, bool* ok) {
  grpc::SslCredentialsOptions ssl;
  *ok = true;
  if (!o.ca.empty()) *ok = *ok && ReadPem(o.ca, "CA", &ssl.pem_root_certs);
  if (!o.cert.empty()) *ok = *ok && ReadPem(o.cert, "client certificate", &ssl.pem_cert_chain);
  if (!o.key.empty()) *ok = *ok && ReadPem(o.key, "client key", &ssl.pem_private_key);
  return grpc::SslCredentials(ssl);
}

}  // namespace

void AddConnectionFlags(CLI::App& app, ClientOptions* o) {
  app.add_option("--addr", o->address, "Server address host:port")
      ->envname("VLMD_ADDR")
      ->capture_default_str();
  app.add_option("--token", o->token, "Bearer token")->envname("VLMD_TOKEN");
  app.add_option("--ca", o->ca, "PEM CA certificate of the server (enables TLS)")
      ->envname("VLMD_CA");
  app.add_option("--cert", o->cert, "PEM client certificate (mutual TLS)")->envname("VLMD_CERT");
  app.add_option("--key", o->key, "PEM client private key (mutual TLS)")->envname("VLMD_KEY");
  app.add_option("--tls-server-name", o->tls_server_name, "Name expected in the server certificate")
      ->envname("VLMD_TLS_SERVER_NAME");
  app.add_flag("--tls", o->tls, "Use TLS with the system's CA roots")->envname("VLMD_TLS");
  app.add_option("--timeout", o->timeout_s, "Deadline of each call in seconds (0 = none)")
      ->envname("VLMD_TIMEOUT")
      ->capture_default_str();
}

std::shared_ptr<grpc::Channel> Connect(const ClientOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  bool use_tls = o.tls || !o.ca.empty() || !o.cert.empty();
  if (!use_tls) {
    return grpc::CreateCustomChannel(o.address, grpc::InsecureChannelCredentials(), args);
  }
  bool ok = true;
  auto credentials = TlsCredentials(o, &ok);
  if (!ok) return nullptr;
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  return grpc::CreateCustomChannel(o.address, credentials, args);
}

void PrepareContext(const ClientOptions& o, grpc::ClientContext* context) {
  if (!o.token.empty()) context->AddMetadata("authorization", "Bearer " + o.token);
  if (o.timeout_s > 0) {
    auto timeout = std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(o.timeout_s));
    context->set_deadline(std::chrono::system_clock::now() + timeout);
  }
}

void PrepareStreamContext(const ClientOptions& o, grpc::ClientContext* context) {
  if (!o.token.empty()) context->AddMetadata("authorization", "Bearer " + o.token);
}

}  // namespace vlmctl
