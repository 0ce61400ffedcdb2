#include "server/rpc_util.h"

#include "core/base/logging.h"

namespace vlmd::server {

StatusOr<api::InferenceService*> ServingState::Get() const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  api::InferenceService* service = service_.load();
  if (service == nullptr) {
    return absl::UnavailableError("server is starting: models are still loading");
  }
  return service;
}

void ServingState::SetJobServices(api::JobService* jobs, api::EvalService* eval) {
  jobs_.store(jobs);
  eval_.store(eval);
  jobs_ready_.store(true);
}

StatusOr<api::JobService*> ServingState::Jobs() const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  if (!jobs_ready_.load()) return absl::UnavailableError("server is starting");
  api::JobService* jobs = jobs_.load();
  if (jobs == nullptr) {
    return absl::FailedPreconditionError(
        "this server runs no fine-tuning jobs: start it with a state_dir (--state-dir)");
  }
  return jobs;
}

StatusOr<api::EvalService*> ServingState::Eval() const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  api::EvalService* eval = eval_.load();
  if (!jobs_ready_.load() || eval == nullptr) {
    return absl::UnavailableError("server is starting: models are still loading");
  }
  return eval;
}

bool ServingState::AcquireSlot(int limit) {
  int now = in_flight_.fetch_add(1) + 1;
  if (limit > 0 && now > limit) {
    in_flight_.fetch_sub(1);
    return false;
  }
  return true;
}

Status AuthorizeCall(const ServiceEnv& env, const grpc::CallbackServerContext& ctx,
                     const Method& method) {
  StatusOr<Caller> caller = env.auth->Authorize(ctx.client_metadata(), method.full);
  if (!caller.ok()) {
    VLMD_LOG(Warning) << "refused " << method.name << " from " << ctx.peer() << ": "
                      << caller.status().message();
    return caller.status();
  }
  VLMD_LOG(Debug) << method.name << " from " << ctx.peer() << " as " << caller->name;
  return absl::OkStatus();
}

grpc::Status CompleteCall(const ServiceEnv& env, const Method& method, const Status& status) {
  grpc::Status out = ToGrpcStatus(status);
  if (!status.ok()) {
    bool server_fault = status.code() == absl::StatusCode::kInternal ||
                        status.code() == absl::StatusCode::kUnknown ||
                        status.code() == absl::StatusCode::kDataLoss;
    if (server_fault) {
      VLMD_LOG(Error) << method.name << " failed: " << status;
    } else {
      VLMD_LOG(Debug) << method.name << ": " << status;
    }
  }
  if (env.metrics != nullptr) env.metrics->RecordRpc(method.name, out.error_code());
  return out;
}

grpc::ServerUnaryReactor* RunUnary(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                                   const Method& method, bool blocking,
                                   std::function<Status()> fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Status auth = CallNoThrow([&] { return AuthorizeCall(env, *ctx, method); });
  if (!auth.ok()) {
    reactor->Finish(CompleteCall(env, method, auth));
    return reactor;
  }
  auto run = [env, reactor, method, fn = std::move(fn)] {
    reactor->Finish(CompleteCall(env, method, CallNoThrow(fn)));
  };
  if (blocking) {
    env.pool->Post(std::move(run));
  } else {
    run();
  }
  return reactor;
}

}  // namespace vlmd::server
