#include "tests/e2e/harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"

extern char** environ;

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using Clock = std::chrono::steady_clock;

std::vector<std::string> MergedEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    vars[kv.substr(0, kv.find('='))] = kv;
  }
  for (const std::string& kv : extra) vars[kv.substr(0, kv.find('='))] = kv;
  std::vector<std::string> out;
  for (auto& [k, kv] : vars) out.push_back(kv);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (std::string& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork + execvpe with stdin/stdout/stderr redirected to files (only async-signal-safe calls
// between fork and exec).
pid_t Spawn(std::vector<std::string> argv, const std::vector<std::string>& env,
            const std::string& in_path, const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> envs = MergedEnv(env);
  std::vector<char*> cargv = CStrings(argv), cenv = CStrings(envs);
  pid_t pid = fork();
  if (pid != 0) return pid;
  int in = open(in_path.c_str(), O_RDONLY);
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0 || err < 0) _exit(126);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  setpgid(0, 0);
  execvpe(cargv[0], cargv.data(), cenv.data());
  _exit(127);
}

// Waits up to `timeout_s`; returns the exit code (128+signal), or -1 after killing it.
int WaitFor(pid_t pid, double timeout_s) {
  auto until = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (Clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  return stem + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

std::string VlmdBinary() { return VLMD_BINARY_DIR "/server/vlmd"; }
std::string VlmctlBinary() { return VLMD_BINARY_DIR "/client/vlmctl"; }
std::string SourceDir() { return VLMD_SOURCE_DIR; }

TempDir::TempDir() {
  std::string tmpl = ::testing::TempDir() + "vlmd-e2e-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = mkdtemp(buf.data());
  path_ = made != nullptr ? made : "";
  EXPECT_FALSE(path_.empty()) << "mkdtemp failed under " << ::testing::TempDir();
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty() && std::getenv("VLMD_E2E_KEEP") == nullptr) {
    std::filesystem::remove_all(path_, ignored);
  }
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         double timeout_s, const std::string& stdin_data) {
  TempDir io;
  std::string in = io.Join("stdin"), out = io.Join("stdout"), err = io.Join("stderr");
  WriteFile(in, stdin_data);
  ProcessResult r;
  pid_t pid = Spawn(argv, env, in, out, err);
  r.exit_code = pid > 0 ? WaitFor(pid, timeout_s) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env) {
  pid_ = Spawn(argv, env, "/dev/null", io_.Join("stdout"), io_.Join("stderr"));
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    Kill(SIGKILL);
    Wait(10);
  }
}

void BackgroundProcess::Kill(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

int BackgroundProcess::Wait(double timeout_s) {
  if (pid_ <= 0) return -1;
  int code = WaitFor(pid_, timeout_s);
  pid_ = -1;
  return code;
}

std::string BackgroundProcess::Output() const { return ReadFile(io_.Join("stdout")); }

const std::string& TinyModelDir() {
  static TempDir dir;  // removed when the test binary exits
  static std::string model;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string out = dir.Join("tiny");
    ProcessResult r = RunProcess(
        {VlmdBinary(), "init-model", "--preset", "tiny", "--seed", "7", "--out", out}, {}, 300);
    if (r.exit_code == 0) {
      model = out;
    } else {
      ADD_FAILURE() << "vlmd init-model failed (" << r.exit_code << "): " << r.err;
    }
  });
  return model;
}

std::unique_ptr<ServerProcess> ServerProcess::Start(const std::string& yaml, const std::string& dir,
                                                    const ServerOptions& options,
                                                    std::string* error) {
  std::string config = dir + "/" + UniqueName("vlmd-") + ".yaml";
  std::string ready = config + ".ready.json";
  WriteFile(config, yaml);
  std::vector<std::string> argv = {VlmdBinary(), "serve",       "--config",     config,
                                   "--listen",   "127.0.0.1:0", "--ready-file", ready};
  if (options.metrics_listen.empty()) {
    argv.push_back("--no-metrics");
  } else {
    argv.insert(argv.end(), {"--metrics-listen", options.metrics_listen});
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->log_path_ = config + ".log";
  server->pid_ = Spawn(argv, {}, "/dev/null", server->log_path_, server->log_path_);
  auto until = Clock::now() + std::chrono::seconds(static_cast<int64_t>(options.ready_timeout_s));
  while (Clock::now() < until) {
    auto j = nlohmann::json::parse(ReadFile(ready), nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      server->address_ = j.value("grpc_address", "");
      server->metrics_address_ = j.value("metrics_address", "");
      return server;
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      *error = "vlmd serve exited during startup:\n" + server->Log();
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *error = "vlmd serve did not become ready in time:\n" + server->Log();
  return nullptr;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(30);
}

int ServerProcess::metrics_port() const {
  size_t colon = metrics_address_.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(metrics_address_.c_str() + colon + 1);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

int ServerProcess::Stop(double timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return Wait(timeout_s);
}

int ServerProcess::Wait(double timeout_s) {
  if (pid_ <= 0) return -1;
  int code = WaitFor(pid_, timeout_s);
  pid_ = -1;
  return code;
}

std::shared_ptr<grpc::Channel> ServerProcess::Channel() const {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<v1::Inference::Stub> ServerProcess::Stub() const {
  return v1::Inference::NewStub(Channel());
}

v1::InferRequest TextRequest(const std::string& text, int max_new_tokens) {
  v1::InferRequest r;
  v1::ChatMessage* m = r.add_messages();
  m->set_role("user");
  m->add_content()->set_text(text);
  r.mutable_params()->set_max_new_tokens(max_new_tokens);
  r.mutable_params()->set_temperature(0);
  return r;
}

namespace {
void Prepare(grpc::ClientContext* ctx, double timeout_s, const std::string& token) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}
}  // namespace

grpc::Status Infer(v1::Inference::Stub& stub, const v1::InferRequest& request,
                   v1::InferResponse* response, double timeout_s, const std::string& token) {
  grpc::ClientContext ctx;
  Prepare(&ctx, timeout_s, token);
  return stub.Infer(&ctx, request, response);
}

StreamResult InferStream(v1::Inference::Stub& stub, const v1::InferRequest& request,
                         double timeout_s, const std::string& token) {
  grpc::ClientContext ctx;
  Prepare(&ctx, timeout_s, token);
  StreamResult out;
  auto reader = stub.InferStream(&ctx, request);
  v1::InferStreamResponse msg;
  while (reader->Read(&msg)) {
    if (msg.has_delta()) {
      ++out.deltas;
      out.text += msg.delta().text();
      out.token_ids.insert(out.token_ids.end(), msg.delta().token_ids().begin(),
                           msg.delta().token_ids().end());
    } else if (msg.has_done()) {
      ++out.dones;
      out.done = msg.done();
    }
  }
  out.status = reader->Finish();
  return out;
}

bool MakeCertificates(const std::string& dir, Certificates* c, std::string* error) {
  c->ca = dir + "/ca.pem";
  c->server_cert = dir + "/server.pem";
  c->server_key = dir + "/server.key";
  c->client_cert = dir + "/client.pem";
  c->client_key = dir + "/client.key";
  WriteFile(dir + "/server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  WriteFile(dir + "/client.ext", "extendedKeyUsage=clientAuth\n");
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto req = [&](const std::vector<std::string>& head, const std::vector<std::string>& tail) {
    std::vector<std::string> argv = head;
    argv.insert(argv.end(), ec.begin(), ec.end());
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
  };
  std::vector<std::vector<std::string>> steps = {
      req({"openssl", "req", "-x509"},
          {"-keyout", dir + "/ca.key", "-out", c->ca, "-days", "2", "-subj", "/CN=vlmd-test-ca"}),
      req({"openssl", "req"},
          {"-keyout", c->server_key, "-out", dir + "/server.csr", "-subj", "/CN=localhost"}),
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", c->ca, "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-out", c->server_cert, "-days", "2", "-extfile",
       dir + "/server.ext"},
      req({"openssl", "req"},
          {"-keyout", c->client_key, "-out", dir + "/client.csr", "-subj", "/CN=vlmd-test-client"}),
      {"openssl", "x509", "-req", "-in", dir + "/client.csr", "-CA", c->ca, "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-out", c->client_cert, "-days", "2", "-extfile",
       dir + "/client.ext"}};
  for (const auto& argv : steps) {
    ProcessResult r = RunProcess(argv, {}, 60);
    if (r.exit_code != 0) {
      *error = argv[1] + " failed: " + r.err;
      return false;
    }
  }
  return true;
}

std::vector<int32_t> OfflineGenerate(const std::string& model_dir, const std::string& request_json,
                                     int max_new_tokens, const std::string& work_dir,
                                     std::string* error, const std::string& adapter_dir) {
  std::string path = work_dir + "/" + UniqueName("req-") + ".json";
  WriteFile(path, request_json);
  std::vector<std::string> argv = {
      VlmdBinary(),    "generate", "--model",          model_dir,
      "--request",     path,       "--max-new-tokens", std::to_string(max_new_tokens),
      "--temperature", "0"};
  if (!adapter_dir.empty()) argv.insert(argv.end(), {"--adapter", adapter_dir});
  ProcessResult r = RunProcess(argv, {}, 300);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || j.is_discarded() || !j.contains("token_ids")) {
    *error = "vlmd generate failed (" + std::to_string(r.exit_code) + "): " + r.err + r.out;
    return {};
  }
  return j["token_ids"].get<std::vector<int32_t>>();
}

}  // namespace vlmd::e2e
