// What every vlmd RPC handler shares: the server's state (loading, serving, draining), the
// authenticator, metrics, the worker pool, and the helper that runs a unary handler with
// authorization, exception guarding, status mapping and metrics in one place.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "core/api/eval.h"
#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/base/status.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/status_map.h"
#include "server/thread_pool.h"

namespace vlmd::server {

// One RPC method: the full name the auth table uses and the short name metrics use.
struct Method {
  const char* full;  // "/vlmd.v1.Inference/Infer"
  const char* name;  // "Infer"
};

// Whether the inference, job and evaluation services can take calls. Thread-safe.
class ServingState {
 public:
  // Makes `service` available (after the models loaded); it must outlive every call.
  void SetService(api::InferenceService* service) { service_.store(service); }
  // Makes the job and evaluation services available; `jobs` is null when the server runs no
  // jobs (no state_dir). Both must outlive every call.
  void SetJobServices(api::JobService* jobs, api::EvalService* eval);
  // From now on calls get UNAVAILABLE (graceful shutdown).
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  // The service, or UNAVAILABLE while the models load or the server drains.
  StatusOr<api::InferenceService*> Get() const;
  // The job service: UNAVAILABLE while starting or draining, FAILED_PRECONDITION when the
  // server runs no jobs.
  StatusOr<api::JobService*> Jobs() const;
  // The evaluation service: UNAVAILABLE while starting or draining.
  StatusOr<api::EvalService*> Eval() const;

  // Takes one of `limit` slots for an inference call (0 = no limit); false when all are
  // taken.
  bool AcquireSlot(int limit);
  void ReleaseSlot() { in_flight_.fetch_sub(1); }

 private:
  std::atomic<api::InferenceService*> service_{nullptr};
  std::atomic<api::JobService*> jobs_{nullptr};
  std::atomic<api::EvalService*> eval_{nullptr};
  std::atomic<bool> jobs_ready_{false};  // SetJobServices was called
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
};

// Dependencies of the RPC handlers; every pointer outlives the gRPC server.
struct ServiceEnv {
  const Authenticator* auth = nullptr;
  ServerMetrics* metrics = nullptr;
  ServingState* state = nullptr;
  ThreadPool* pool = nullptr;
  int max_concurrent_requests = 0;  // 0 = no limit
};

// Checks the caller's token for `method`. Logs refusals (never the token).
Status AuthorizeCall(const ServiceEnv& env, const grpc::CallbackServerContext& ctx,
                     const Method& method);

// Maps `status`, logs failures, counts the RPC in metrics; returns the gRPC status to send.
grpc::Status CompleteCall(const ServiceEnv& env, const Method& method, const Status& status);

// Runs a unary handler: authorization, then `fn` (returning Status; it fills the response),
// inline or on the worker pool when `blocking`. Exceptions become statuses. Returns the
// reactor the handler must return.
grpc::ServerUnaryReactor* RunUnary(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                                   const Method& method, bool blocking, std::function<Status()> fn);

}  // namespace vlmd::server
