// End-to-end test harness: real `vlmd serve` processes on loopback (port 0, learned from the
// ready file), the tiny model made by `vlmd init-model`, subprocesses (vlmctl, vlmd
// generate, openssl) and small request builders. No mocks: every test talks to the real
// server binary over gRPC.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmd::e2e {

// Paths of the binaries under test and of the source tree.
std::string VlmdBinary();
std::string VlmctlBinary();
std::string SourceDir();

// A fresh directory under the test's temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `data` to `path` (aborts the test on failure) / reads a whole file ("" if missing).
void WriteFile(const std::string& path, const std::string& data);
std::string ReadFile(const std::string& path);

// Exit code (128+signal when killed) and captured output of a finished process.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` with `env` ("KEY=VALUE", added to or replacing this process's environment),
// feeding `stdin_data`; kills it after `timeout_s`.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {}, double timeout_s = 120,
                         const std::string& stdin_data = "");

// A process running in the background (a client to kill mid-call). Killed with SIGKILL on
// destruction if still running.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  ~BackgroundProcess();
  void Kill(int signo);
  // Waits for the exit; returns the exit code (128+signal when killed).
  int Wait(double timeout_s = 60);
  // What it wrote to stdout so far.
  std::string Output() const;

 private:
  TempDir io_;
  pid_t pid_ = -1;
};

// The tiny model (`vlmd init-model --preset tiny --seed 7`), made once per test binary.
const std::string& TinyModelDir();

// How to start a server besides its YAML.
struct ServerOptions {
  std::string metrics_listen = "127.0.0.1:0";  // "" = --no-metrics
  std::vector<std::string> extra_args;
  double ready_timeout_s = 180;
};

// A running `vlmd serve --config <yaml>` on 127.0.0.1:0, SERVING once Start returns.
class ServerProcess {
 public:
  // Starts the server in `dir` with the given config text. On failure returns nullptr and
  // sets *error (with the server's log).
  static std::unique_ptr<ServerProcess> Start(const std::string& yaml, const std::string& dir,
                                              const ServerOptions& options, std::string* error);
  ~ServerProcess();

  const std::string& address() const { return address_; }
  // "" when the metrics endpoint is not listening.
  const std::string& metrics_address() const { return metrics_address_; }
  int metrics_port() const;
  pid_t pid() const { return pid_; }
  // The server's stderr so far.
  std::string Log() const;
  // Sends SIGTERM and waits; returns the exit code (or -1 on timeout, after SIGKILL).
  int Stop(double timeout_s = 60);
  // Waits for the process to exit on its own (after a signal the test sent).
  int Wait(double timeout_s = 60);

  // A plaintext channel and stub to this server.
  std::shared_ptr<grpc::Channel> Channel() const;
  std::unique_ptr<vlmd::v1::Inference::Stub> Stub() const;

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  std::string address_, metrics_address_, log_path_;
};

// A user turn of plain text; greedy unless the test changes params.
vlmd::v1::InferRequest TextRequest(const std::string& text, int max_new_tokens);

// Runs Infer with a deadline of `timeout_s` and an optional bearer token.
grpc::Status Infer(vlmd::v1::Inference::Stub& stub, const vlmd::v1::InferRequest& request,
                   vlmd::v1::InferResponse* response, double timeout_s = 120,
                   const std::string& token = "");

// Runs InferStream to the end; collects the deltas' text and token ids and the done message.
struct StreamResult {
  grpc::Status status;
  std::string text;
  std::vector<int32_t> token_ids;
  int deltas = 0;
  int dones = 0;
  vlmd::v1::InferDone done;
};
StreamResult InferStream(vlmd::v1::Inference::Stub& stub, const vlmd::v1::InferRequest& request,
                         double timeout_s = 120, const std::string& token = "");

// Files of a throwaway PKI made with the openssl CLI: a CA, a server certificate for
// 127.0.0.1/localhost and a client certificate, all signed by the CA.
struct Certificates {
  std::string ca, server_cert, server_key, client_cert, client_key;
};
// Returns false (and the openssl output in *error) when openssl fails.
bool MakeCertificates(const std::string& dir, Certificates* out, std::string* error);

// The token ids `vlmd generate` produces for a REQ.json (greedy, `max_new_tokens`), or empty
// with *error set.
std::vector<int32_t> OfflineGenerate(const std::string& model_dir, const std::string& request_json,
                                     int max_new_tokens, const std::string& work_dir,
                                     std::string* error, const std::string& adapter_dir = "");

}  // namespace vlmd::e2e
