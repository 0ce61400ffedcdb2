#include "server/inference_rpc.h"

#include "core/base/logging.h"
#include "server/convert.h"
#include "server/infer_calls.h"

namespace vlmd::server {
namespace {

constexpr Method kListModels = {"/vlmd.v1.Inference/ListModels", "ListModels"};
constexpr Method kLoadAdapter = {"/vlmd.v1.Inference/LoadAdapter", "LoadAdapter"};
constexpr Method kUnloadAdapter = {"/vlmd.v1.Inference/UnloadAdapter", "UnloadAdapter"};
constexpr Method kListAdapters = {"/vlmd.v1.Inference/ListAdapters", "ListAdapters"};

}  // namespace

grpc::ServerUnaryReactor* InferenceRpcService::Infer(grpc::CallbackServerContext* ctx,
                                                     const v1::InferRequest* request,
                                                     v1::InferResponse* response) {
  return UnaryInferCall::Start(env_, ctx, request, response);
}

grpc::ServerWriteReactor<v1::InferStreamResponse>* InferenceRpcService::InferStream(
    grpc::CallbackServerContext* ctx, const v1::InferRequest* request) {
  return StreamInferCall::Start(env_, ctx, request);
}

grpc::ServerUnaryReactor* InferenceRpcService::ListModels(grpc::CallbackServerContext* ctx,
                                                          const v1::ListModelsRequest*,
                                                          v1::ListModelsResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kListModels, /*blocking=*/false, [state, response]() -> Status {
    ASSIGN_OR_RETURN(api::InferenceService * service, state->Get());
    std::vector<api::ModelInfo> models = service->ListModels();
    for (size_t i = 0; i < models.size(); ++i) {
      v1::ModelInfo* m = response->add_models();
      ToProto(models[i], m);
      m->set_is_default(i == 0);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* InferenceRpcService::LoadAdapter(grpc::CallbackServerContext* ctx,
                                                           const v1::LoadAdapterRequest* request,
                                                           v1::LoadAdapterResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(
      env_, ctx, kLoadAdapter, /*blocking=*/true, [state, request, response]() -> Status {
        if (request->name().empty()) {
          return absl::InvalidArgumentError("adapter name is empty");
        }
        if (request->path().empty()) {
          return absl::InvalidArgumentError("adapter path is empty");
        }
        ASSIGN_OR_RETURN(api::InferenceService * service, state->Get());
        ASSIGN_OR_RETURN(api::AdapterInfo info,
                         service->LoadAdapter(request->name(), request->path(), request->model()));
        ToProto(info, response->mutable_adapter());
        VLMD_LOG(Info) << "adapter " << info.name << " loaded for model " << info.model << " from "
                       << info.path;
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* InferenceRpcService::UnloadAdapter(
    grpc::CallbackServerContext* ctx, const v1::UnloadAdapterRequest* request,
    v1::UnloadAdapterResponse*) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kUnloadAdapter, /*blocking=*/false, [state, request]() -> Status {
    if (request->name().empty()) return absl::InvalidArgumentError("adapter name is empty");
    ASSIGN_OR_RETURN(api::InferenceService * service, state->Get());
    RETURN_IF_ERROR(service->UnloadAdapter(request->name()));
    VLMD_LOG(Info) << "adapter " << request->name() << " unloaded";
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* InferenceRpcService::ListAdapters(grpc::CallbackServerContext* ctx,
                                                            const v1::ListAdaptersRequest* request,
                                                            v1::ListAdaptersResponse* response) {
  ServingState* state = env_.state;
  return RunUnary(env_, ctx, kListAdapters, /*blocking=*/false,
                  [state, request, response]() -> Status {
                    ASSIGN_OR_RETURN(api::InferenceService * service, state->Get());
                    for (const api::AdapterInfo& a : service->ListAdapters()) {
                      if (!request->model().empty() && a.model != request->model()) continue;
                      ToProto(a, response->add_adapters());
                    }
                    return absl::OkStatus();
                  });
}

}  // namespace vlmd::server
