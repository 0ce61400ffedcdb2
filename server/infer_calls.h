// The two generation RPCs as gRPC callback reactors. Each call posts its preparation and
// Submit to the worker pool, receives the engine's output through an api::InferSink on the
// engine thread, and cancels the engine request when the client cancels, disconnects or its
// deadline passes (OnCancel), so its batch slot is freed at the engine's next step.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>

#include "server/convert.h"
#include "server/rpc_util.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmd::server {

// Per-call bookkeeping shared by both reactors: admission (state, auth, concurrency slot),
// submission and cancellation. Thread-safe.
class EngineCall {
 public:
  EngineCall(const ServiceEnv& env, grpc::CallbackServerContext* ctx, const Method& method)
      : env_(env), ctx_(ctx), method_(method) {}

  // On the gRPC thread: authorization and the concurrency limit.
  Status Admit();
  // On the pool: converts the request, fills the id, default model and deadline, and submits
  // it. After OK the sink gets exactly one OnDone.
  Status Submit(const v1::InferRequest& request, std::shared_ptr<api::InferSink> sink);
  // Cancels the engine request now, or as soon as it is submitted.
  void Cancel();
  // Id, model and adapter of the submitted request.
  const RequestNames& names() const { return names_; }
  // Maps, logs and counts the final status.
  grpc::Status Complete(const Status& status) { return CompleteCall(env_, method_, status); }
  // Gives back the concurrency slot (from the reactor's OnDone). Idempotent.
  void Release();

 private:
  ServiceEnv env_;
  grpc::CallbackServerContext* ctx_;
  Method method_;
  RequestNames names_;  // written before Submit, read by the engine thread after it
  std::mutex mu_;
  bool cancelled_ = false;                     // guarded by mu_
  std::shared_ptr<api::CancelHandle> handle_;  // guarded by mu_
  bool holds_slot_ = false;                    // guarded by mu_
};

// Infer: collects the whole answer, then finishes. Owns itself until gRPC's OnDone and the
// engine's OnDone have both happened.
class UnaryInferCall final : public grpc::ServerUnaryReactor {
 public:
  // Starts the call; returns the reactor for the handler to return.
  static grpc::ServerUnaryReactor* Start(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                                         const v1::InferRequest* request,
                                         v1::InferResponse* response);
  UnaryInferCall(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                 const v1::InferRequest* request, v1::InferResponse* response);

  // Engine thread.
  void OnChunk(const api::InferChunk&) {}
  void OnResult(const StatusOr<GenerationResult>& result);
  // gRPC.
  void OnCancel() override { call_.Cancel(); }
  void OnDone() override;

 private:
  void FinishOnce(const Status& status);

  EngineCall call_;
  const v1::InferRequest* request_;
  v1::InferResponse* response_;
  std::shared_ptr<UnaryInferCall> self_;  // released in OnDone
  std::once_flag finished_;
};

// InferStream: writes a delta per engine chunk (merging chunks while a write is in flight),
// then the done message. Owns itself like UnaryInferCall.
class StreamInferCall final : public grpc::ServerWriteReactor<v1::InferStreamResponse> {
 public:
  static grpc::ServerWriteReactor<v1::InferStreamResponse>* Start(const ServiceEnv& env,
                                                                  grpc::CallbackServerContext* ctx,
                                                                  const v1::InferRequest* request);
  StreamInferCall(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                  const v1::InferRequest* request);

  // Engine thread.
  void OnChunk(const api::InferChunk& chunk);
  void OnResult(const StatusOr<GenerationResult>& result);
  // gRPC.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Ends the call with `status` once pending writes are out (or at once when broken).
  void EndWith(const Status& status);

 private:
  // Starts the next write or the finish, if one is due. Never holds mu_ while calling gRPC.
  void Pump();

  EngineCall call_;
  const v1::InferRequest* request_;
  std::shared_ptr<StreamInferCall> self_;  // released in OnDone
  std::mutex mu_;
  std::deque<v1::InferStreamResponse> pending_;  // front is in flight when writing_
  bool writing_ = false;                         // guarded by mu_
  bool ended_ = false;                           // the final status is known; guarded by mu_
  bool broken_ = false;                          // client gone or a write failed; guarded by mu_
  bool finished_ = false;                        // Finish was called; guarded by mu_
  Status final_status_;                          // guarded by mu_
};

}  // namespace vlmd::server
