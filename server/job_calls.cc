#include "server/job_calls.h"

#include "core/base/logging.h"
#include "server/job_convert.h"

namespace vlmd::server {
namespace {

constexpr Method kWatchJob = {"/vlmd.v1.Jobs/WatchJob", "WatchJob"};
constexpr Method kEvaluate = {"/vlmd.v1.Jobs/Evaluate", "Evaluate"};

}  // namespace

Status LongOps::TryPost(const std::string& what, std::function<void()> task) {
  if (running_.fetch_add(1) >= limit_) {
    running_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many merges and evaluations at once (limit ", limit_, "); retry ", what, " later"));
  }
  pool_.Post([this, task = std::move(task)] {
    task();
    running_.fetch_sub(1);
  });
  return absl::OkStatus();
}

// ---- WatchJob ----

WatchJobCall::WatchJobCall(const ServiceEnv& env) : QueuedWriter(env, kWatchJob) {}

grpc::ServerWriteReactor<v1::JobEvent>* WatchJobCall::Start(const ServiceEnv& env,
                                                            grpc::CallbackServerContext* ctx,
                                                            const v1::WatchJobRequest* request) {
  auto call = std::make_shared<WatchJobCall>(env);
  call->self_ = call;
  Status opened = CallNoThrow([&]() -> Status {
    RETURN_IF_ERROR(AuthorizeCall(env, *ctx, kWatchJob));
    return call->Open(*request);
  });
  if (!opened.ok()) call->EndWith(opened);
  return call.get();
}

Status WatchJobCall::Open(const v1::WatchJobRequest& request) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is empty");
  if (request.from_seq() < 0) return absl::InvalidArgumentError("from_seq must be >= 0");
  ASSIGN_OR_RETURN(api::JobService * jobs, env().state->Jobs());
  std::shared_ptr<WatchJobCall> self = self_;
  ASSIGN_OR_RETURN(std::unique_ptr<api::JobService::Watch> watch,
                   jobs->WatchJob(
                       request.job_id(), request.from_seq(),
                       [self](const api::JobEvent& event) {
                         v1::JobEvent message;
                         ToProto(event, &message);
                         return self->Push(std::move(message));
                       },
                       [self] { self->EndWith(absl::OkStatus()); }));
  std::unique_lock<std::mutex> lock(mu_);
  if (!done_) {
    watch_ = std::move(watch);
    return absl::OkStatus();
  }
  lock.unlock();
  watch.reset();  // the call already ended (the job had no event left to send)
  return absl::OkStatus();
}

void WatchJobCall::OnDone() {
  MarkBroken();  // a watch thread blocked in Push returns false and stops
  std::unique_ptr<api::JobService::Watch> watch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    watch = std::move(watch_);
  }
  watch.reset();                 // joins the watch thread
  auto keep = std::move(self_);  // may destroy this once the watch's callbacks are gone
}

// ---- Evaluate ----

EvaluateCall::EvaluateCall(const ServiceEnv& env, const v1::EvaluateRequest& request)
    : QueuedWriter(env, kEvaluate), request_(request) {}

grpc::ServerWriteReactor<v1::EvaluateResponse>* EvaluateCall::Start(
    const ServiceEnv& env, LongOps* ops, grpc::CallbackServerContext* ctx,
    const v1::EvaluateRequest* request) {
  auto call = std::make_shared<EvaluateCall>(env, *request);
  call->self_ = call;
  Status started = CallNoThrow([&]() -> Status {
    RETURN_IF_ERROR(AuthorizeCall(env, *ctx, kEvaluate));
    RETURN_IF_ERROR(env.state->Eval().status());
    return ops->TryPost("the evaluation", [call] { call->Run(); });
  });
  if (!started.ok()) {
    if (env.metrics != nullptr) env.metrics->jobs().RecordEvaluation(started.code(), 0);
    call->EndWith(started);
  }
  return call.get();
}

void EvaluateCall::Run() {
  StatusOr<api::EvalSummary> summary = absl::InternalError("evaluation did not run");
  Status status = CallNoThrow([&]() -> Status {
    ASSIGN_OR_RETURN(api::EvalService * eval, env().state->Eval());
    summary = eval->Evaluate(FromProto(request_),
                             [this](int64_t done, int64_t total, const api::EvalSampleResult* s) {
                               return OnProgress(done, total, s);
                             });
    return summary.status();
  });
  if (env().metrics != nullptr) {
    env().metrics->jobs().RecordEvaluation(status.code(), status.ok() ? summary->samples : 0);
  }
  if (status.ok()) {
    VLMD_LOG(Info) << "evaluation of " << summary->samples
                   << " samples done: " << summary->results_path;
    v1::EvaluateResponse message;
    ToProto(*summary, message.mutable_summary());
    Push(std::move(message));
  }
  EndWith(status);
}

bool EvaluateCall::OnProgress(int64_t done, int64_t total, const api::EvalSampleResult* sample) {
  if (env().state->draining()) return false;
  v1::EvaluateResponse message;
  v1::EvalProgress* progress = message.mutable_progress();
  progress->set_done(done);
  progress->set_total(total);
  if (sample != nullptr) ToProto(*sample, progress->mutable_sample());
  return Push(std::move(message));
}

void EvaluateCall::OnDone() {
  MarkBroken();                  // the evaluation's next progress callback cancels it
  auto keep = std::move(self_);  // the LongOps task holds another reference until it ends
}

}  // namespace vlmd::server
