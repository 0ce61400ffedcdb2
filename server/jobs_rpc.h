// vlmd.v1.Jobs on the gRPC callback API: job submission, status, listing and cancellation as
// unary calls; WatchJob and Evaluate as streams (job_calls.h); MergeLora on the long-operations
// pool. Every method needs the admin role (server/auth.cc). Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/job_calls.h"
#include "server/rpc_util.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmd::server {

class JobsRpcService final : public v1::Jobs::CallbackService {
 public:
  // `env`'s pointers and `ops` must outlive the gRPC server this service is registered with.
  JobsRpcService(const ServiceEnv& env, LongOps* ops) : env_(env), ops_(ops) {}

  grpc::ServerUnaryReactor* StartSftJob(grpc::CallbackServerContext* ctx,
                                        const v1::StartSftJobRequest* request,
                                        v1::StartSftJobResponse* response) override;
  grpc::ServerUnaryReactor* GetJobStatus(grpc::CallbackServerContext* ctx,
                                         const v1::GetJobStatusRequest* request,
                                         v1::GetJobStatusResponse* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* request,
                                      v1::CancelJobResponse* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* MergeLora(grpc::CallbackServerContext* ctx,
                                      const v1::MergeLoraRequest* request,
                                      v1::MergeLoraResponse* response) override;
  grpc::ServerWriteReactor<v1::EvaluateResponse>* Evaluate(
      grpc::CallbackServerContext* ctx, const v1::EvaluateRequest* request) override;

 private:
  ServiceEnv env_;
  LongOps* ops_;
};

}  // namespace vlmd::server
