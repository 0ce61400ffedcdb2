// vlmd.v1.Inference on the gRPC callback API: Infer and InferStream through the reactors of
// infer_calls.h; model and adapter management as unary calls. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/rpc_util.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmd::server {

class InferenceRpcService final : public v1::Inference::CallbackService {
 public:
  // `env`'s pointers must outlive the gRPC server this service is registered with.
  explicit InferenceRpcService(const ServiceEnv& env) : env_(env) {}

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const v1::InferRequest* request,
                                  v1::InferResponse* response) override;
  grpc::ServerWriteReactor<v1::InferStreamResponse>* InferStream(
      grpc::CallbackServerContext* ctx, const v1::InferRequest* request) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* LoadAdapter(grpc::CallbackServerContext* ctx,
                                        const v1::LoadAdapterRequest* request,
                                        v1::LoadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* UnloadAdapter(grpc::CallbackServerContext* ctx,
                                          const v1::UnloadAdapterRequest* request,
                                          v1::UnloadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(grpc::CallbackServerContext* ctx,
                                         const v1::ListAdaptersRequest* request,
                                         v1::ListAdaptersResponse* response) override;

 private:
  ServiceEnv env_;
};

}  // namespace vlmd::server
