#include "server/serve.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "core/api/eval.h"
#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "nlohmann/json.hpp"
#include "server/inference_rpc.h"
#include "server/job_metrics.h"
#include "server/jobs_rpc.h"
#include "server/listeners.h"
#include "server/signals.h"

#ifndef VLMD_VERSION
#define VLMD_VERSION "unknown"
#endif

namespace vlmd::server {
namespace {

const std::vector<std::string> kHealthNames = {"vlmd.v1.Inference", "vlmd.v1.Jobs"};
// Merges and evaluations running at once (each holds a thread of its own).
constexpr int kMaxLongOps = 4;

// Where the first termination signal is delivered to the main thread.
struct StopSignal {
  std::mutex mu;
  std::condition_variable cv;
  int signo = 0;  // guarded by mu
  std::atomic<bool> serving{false};
};

LogLevel ParseLogLevel(const std::string& text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

void OnSignal(StopSignal* stop, int signo) {
  if (!stop->serving.load()) {
    VLMD_LOG(Warning) << "signal " << signo << " during startup: exiting";
    std::_Exit(128 + signo);
  }
  std::lock_guard<std::mutex> lock(stop->mu);
  if (stop->signo != 0) {
    VLMD_LOG(Warning) << "second signal " << signo << " while draining: exiting now";
    std::_Exit(128 + signo);
  }
  stop->signo = signo;
  stop->cv.notify_all();
}

int WaitForSignal(StopSignal* stop) {
  std::unique_lock<std::mutex> lock(stop->mu);
  stop->cv.wait(lock, [stop] { return stop->signo != 0; });
  return stop->signo;
}

void LogSecurity(const ServeConfig& c) {
  int admins =
      static_cast<int>(std::count_if(c.auth.tokens.begin(), c.auth.tokens.end(),
                                     [](const TokenEntry& t) { return t.role == Role::kAdmin; }));
  if (c.auth.tokens.empty()) {
    VLMD_LOG(Warning) << "authentication is OFF: no tokens configured, every caller is admin";
  } else {
    VLMD_LOG(Info) << "bearer-token authentication on: " << c.auth.tokens.size() << " tokens ("
                   << admins << " admin)";
  }
  const char* tls = c.tls.cert.empty()        ? "plaintext (no TLS)"
                    : c.tls.client_ca.empty() ? "TLS"
                                              : "mutual TLS (client certificates required)";
  VLMD_LOG(Info) << "transport: " << tls;
  // Plaintext beyond loopback: tokens, prompts and images cross the network in clear text.
  const bool loopback = absl::StartsWith(c.listen, "127.") || absl::StartsWith(c.listen, "[::1]") ||
                        absl::StartsWith(c.listen, "localhost:");
  if (c.tls.cert.empty() && !loopback) {
    VLMD_LOG(Warning) << "listening on " << c.listen
                      << " without TLS: bearer tokens and requests travel in clear text "
                         "(set tls.cert/tls.key, or keep plaintext on loopback behind a proxy)";
  }
}

Status PreloadAdapters(api::InferenceService& service, const ServeConfig& c) {
  for (const AdapterEntry& a : c.adapters) {
    StatusOr<api::AdapterInfo> info = service.LoadAdapter(a.name, a.path, a.model);
    if (!info.ok()) {
      return absl::Status(info.status().code(),
                          absl::StrCat("adapters.", a.name, ": ", info.status().message()));
    }
    VLMD_LOG(Info) << "adapter " << a.name << " loaded for model " << info->model;
  }
  return absl::OkStatus();
}

Status WriteReadyFile(const std::string& path, const std::string& grpc_address,
                      const std::string& metrics_address) {
  if (path.empty()) return absl::OkStatus();
  nlohmann::json j = {{"grpc_address", grpc_address},
                      {"metrics_address", metrics_address},
                      {"pid", static_cast<int64_t>(getpid())}};
  return WriteFileAtomic(path, j.dump() + "\n");
}

MetricsSnapshot TakeSnapshot(const api::InferenceService& service, const api::JobService* jobs) {
  MetricsSnapshot snapshot{service.Stats(), service.ListModels(), service.ListAdapters()};
  if (jobs != nullptr) snapshot.jobs = jobs->Stats();
  return snapshot;
}

// A GPU both lent to training and serving a model is shared by both: allowed (small models,
// one-GPU machines), but worth a line in the log.
void WarnSharedGpus(const ServeConfig& c, const api::InferenceService& inference) {
  std::set<int> serving = InferenceGpus(inference.ListModels());
  for (int gpu : c.training.gpus) {
    if (serving.count(gpu)) {
      VLMD_LOG(Warning) << "GPU " << gpu << " serves a model and is lent to training jobs too";
    }
  }
}

int PoolThreads() {
  unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(cores / 2, 2u, 16u));
}

// Everything the server holds while running; members are declared in the order they must be
// torn down in reverse.
class Server {
 public:
  Server(const ServeConfig& config, const ServeOptions& options)
      : config_(config),
        options_(options),
        metrics_(VLMD_VERSION),
        auth_(config.auth.tokens),
        pool_(PoolThreads()) {}

  int Run();

 private:
  Status Start();
  // Creates the job service (when state_dir is set) and the evaluation service.
  Status StartJobServices();
  void Drain(int signo);

  const ServeConfig& config_;
  const ServeOptions& options_;
  StopSignal stop_;
  ServerMetrics metrics_;
  MetricsListener metrics_listener_;
  Authenticator auth_;
  ServingState state_;
  ThreadPool pool_;
  LongOps ops_{kMaxLongOps};
  std::unique_ptr<api::InferenceService> inference_;
  std::unique_ptr<api::JobService> jobs_;   // uses inference_ (adapters of finished jobs)
  std::unique_ptr<api::EvalService> eval_;  // uses inference_ and jobs_
  std::unique_ptr<InferenceRpcService> rpc_;
  std::unique_ptr<JobsRpcService> jobs_rpc_;
  GrpcListener grpc_;
};

Status Server::Start() {
  if (!config_.state_dir.empty()) RETURN_IF_ERROR(MakeDirs(config_.state_dir));
  LogSecurity(config_);
  metrics_listener_ = StartMetricsListener(config_.metrics_listen, metrics_.collectable());
  ServiceEnv env{&auth_, &metrics_, &state_, &pool_, config_.limits.max_concurrent_requests};
  rpc_ = std::make_unique<InferenceRpcService>(env);
  jobs_rpc_ = std::make_unique<JobsRpcService>(env, &ops_);
  ASSIGN_OR_RETURN(grpc_, StartGrpcServer(config_, {rpc_.get(), jobs_rpc_.get()}, kHealthNames));
  VLMD_LOG(Info) << "listening on " << grpc_.address << " (NOT_SERVING while models load)";
  ASSIGN_OR_RETURN(inference_,
                   api::InferenceService::Create(ToInferenceConfig(config_), &metrics_));
  RETURN_IF_ERROR(PreloadAdapters(*inference_, config_));
  RETURN_IF_ERROR(StartJobServices());
  api::InferenceService* inference = inference_.get();
  api::JobService* jobs = jobs_.get();
  metrics_.SetSnapshotSource([inference, jobs] { return TakeSnapshot(*inference, jobs); });
  state_.SetService(inference);
  SetHealth(*grpc_.server, kHealthNames, true);
  stop_.serving = true;
  RETURN_IF_ERROR(WriteReadyFile(options_.ready_file, grpc_.address, metrics_listener_.address));
  VLMD_LOG(Info) << "SERVING " << config_.models.size() << " model(s) on " << grpc_.address;
  return absl::OkStatus();
}

Status Server::StartJobServices() {
  if (config_.state_dir.empty()) {
    VLMD_LOG(Info) << "fine-tuning jobs are off (no state_dir)";
  } else {
    StatusOr<std::unique_ptr<api::JobService>> jobs =
        api::JobService::Create(ToJobServiceConfig(config_), inference_.get());
    if (!jobs.ok()) {
      return absl::Status(jobs.status().code(),
                          absl::StrCat("job service: ", jobs.status().message()));
    }
    jobs_ = std::move(*jobs);
    VLMD_LOG(Info) << "fine-tuning jobs: state " << config_.state_dir << ", training GPUs ["
                   << absl::StrJoin(config_.training.gpus, ",") << "], CPU slots "
                   << config_.training.cpu_slots;
    WarnSharedGpus(config_, *inference_);
  }
  eval_ = api::EvalService::Create(inference_.get(), jobs_.get(), config_.allowed_roots,
                                   config_.state_dir);
  state_.SetJobServices(jobs_.get(), eval_.get());
  return absl::OkStatus();
}

void Server::Drain(int signo) {
  auto grace =
      std::chrono::milliseconds(static_cast<int64_t>(config_.shutdown_grace_seconds * 1000.0));
  VLMD_LOG(Info) << "signal " << signo << ": draining (grace " << grace.count() << " ms)";
  if (grpc_.server) SetHealth(*grpc_.server, kHealthNames, false);
  state_.StartDraining();
  // Jobs first: no more scheduling; running workers are left to the next server (jobs.h).
  if (jobs_) jobs_->Shutdown(/*stop_workers=*/false);
  if (inference_) inference_->Shutdown(grace);
  if (grpc_.server) {
    grpc_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_.server->Wait();
  }
  pool_.Stop();
  ops_.Stop();  // a merge in progress finishes; evaluations stop at their next sample
  metrics_.SetSnapshotSource(nullptr);
  metrics_listener_.server.reset();
  VLMD_LOG(Info) << "stopped";
}

int Server::Run() {
  WatchTerminationSignals([this](int signo) { OnSignal(&stop_, signo); });
  Status started = Start();
  if (!started.ok()) {
    VLMD_LOG(Error) << "vlmd serve could not start: " << started.message();
    stop_.serving = true;  // a signal now takes the normal path
    Drain(0);
    return 1;
  }
  Drain(WaitForSignal(&stop_));
  return 0;
}

}  // namespace

int RunServe(const ServeConfig& config, const ServeOptions& options) {
  BlockTerminationSignals();
  SetLogLevel(ParseLogLevel(config.log_level));
  Server server(config, options);
  return server.Run();
}

}  // namespace vlmd::server
