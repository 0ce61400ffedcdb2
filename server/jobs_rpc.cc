#include "server/jobs_rpc.h"

#include "core/base/logging.h"
#include "server/job_convert.h"

namespace vlmd::server {
namespace {

constexpr Method kStartSftJob = {"/vlmd.v1.Jobs/StartSftJob", "StartSftJob"};
constexpr Method kGetJobStatus = {"/vlmd.v1.Jobs/GetJobStatus", "GetJobStatus"};
constexpr Method kCancelJob = {"/vlmd.v1.Jobs/CancelJob", "CancelJob"};
constexpr Method kListJobs = {"/vlmd.v1.Jobs/ListJobs", "ListJobs"};
constexpr Method kMergeLora = {"/vlmd.v1.Jobs/MergeLora", "MergeLora"};

Status CheckJobId(const std::string& id) {
  return id.empty() ? absl::InvalidArgumentError("job_id is empty") : absl::OkStatus();
}

// The merge itself, on a LongOps thread.
Status RunMerge(ServingState* state, const v1::MergeLoraRequest& request,
                v1::MergeLoraResponse* response) {
  ASSIGN_OR_RETURN(api::MergeRequest merge, FromProto(request));
  ASSIGN_OR_RETURN(api::JobService * jobs, state->Jobs());
  VLMD_LOG(Info) << "merging " << (merge.job_id.empty() ? merge.adapter_dir : merge.job_id)
                 << " into " << merge.output_dir;
  ASSIGN_OR_RETURN(api::MergeResult result, jobs->MergeLora(merge));
  ToProto(result, response);
  response->set_registered_as(merge.register_as);
  VLMD_LOG(Info) << "merged " << result.merged_modules << " modules into " << result.output_dir
                 << " in " << result.seconds << " s";
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* JobsRpcService::StartSftJob(grpc::CallbackServerContext* ctx,
                                                      const v1::StartSftJobRequest* request,
                                                      v1::StartSftJobResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(
      env_, ctx, kStartSftJob, /*blocking=*/true, [state, request, response]() -> Status {
        if (!request->has_spec()) return absl::InvalidArgumentError("spec is required");
        ASSIGN_OR_RETURN(api::JobService * jobs, state->Jobs());
        ASSIGN_OR_RETURN(api::JobStatus job, jobs->StartSftJob(FromProto(request->spec())));
        ToProto(job, response->mutable_job());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* JobsRpcService::GetJobStatus(grpc::CallbackServerContext* ctx,
                                                       const v1::GetJobStatusRequest* request,
                                                       v1::GetJobStatusResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kGetJobStatus, /*blocking=*/false,
                  [state, request, response]() -> Status {
                    RETURN_IF_ERROR(CheckJobId(request->job_id()));
                    ASSIGN_OR_RETURN(api::JobService * jobs, state->Jobs());
                    ASSIGN_OR_RETURN(api::JobStatus job, jobs->GetJob(request->job_id()));
                    ToProto(job, response->mutable_job());
                    return absl::OkStatus();
                  });
}

grpc::ServerWriteReactor<v1::JobEvent>* JobsRpcService::WatchJob(
    grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* request) {
  return WatchJobCall::Start(env_, ctx, request);
}

grpc::ServerUnaryReactor* JobsRpcService::CancelJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* request,
                                                    v1::CancelJobResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kCancelJob, /*blocking=*/true, [state, request, response]() -> Status {
    RETURN_IF_ERROR(CheckJobId(request->job_id()));
    ASSIGN_OR_RETURN(api::JobService * jobs, state->Jobs());
    ASSIGN_OR_RETURN(api::JobStatus job, jobs->CancelJob(request->job_id()));
    ToProto(job, response->mutable_job());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobsRpcService::ListJobs(grpc::CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kListJobs, /*blocking=*/false, [state, request, response]() -> Status {
    if (!v1::JobState_IsValid(request->state())) {
      return absl::InvalidArgumentError("unknown job state");
    }
    ASSIGN_OR_RETURN(api::JobService * jobs, state->Jobs());
    for (const api::JobStatus& job : jobs->ListJobs(FromProto(request->state()))) {
      ToProto(job, response->add_jobs());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobsRpcService::MergeLora(grpc::CallbackServerContext* ctx,
                                                    const v1::MergeLoraRequest* request,
                                                    v1::MergeLoraResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServiceEnv env = env_;
  auto finish = [env, reactor](const Status& status) {
    if (env.metrics != nullptr) env.metrics->jobs().RecordMerge(status.code());
    reactor->Finish(CompleteCall(env, kMergeLora, status));
  };
  Status started = CallNoThrow([&]() -> Status {
    RETURN_IF_ERROR(AuthorizeCall(env, *ctx, kMergeLora));
    RETURN_IF_ERROR(env.state->Jobs().status());
    return ops_->TryPost("the merge", [env, request, response, finish] {
      finish(CallNoThrow([&] { return RunMerge(env.state, *request, response); }));
    });
  });
  if (!started.ok()) finish(started);
  return reactor;
}

grpc::ServerWriteReactor<v1::EvaluateResponse>* JobsRpcService::Evaluate(
    grpc::CallbackServerContext* ctx, const v1::EvaluateRequest* request) {
  return EvaluateCall::Start(env_, ops_, ctx, request);
}

}  // namespace vlmd::server
