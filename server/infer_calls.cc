#include "server/infer_calls.h"

#include <random>

#include "absl/strings/str_format.h"
#include "core/base/logging.h"

namespace vlmd::server {
namespace {

constexpr Method kInfer = {"/vlmd.v1.Inference/Infer", "Infer"};
constexpr Method kInferStream = {"/vlmd.v1.Inference/InferStream", "InferStream"};

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("req-%016x", rng());
}

// Forwards the engine's callbacks to a call and keeps exceptions out of the engine thread.
template <typename Call>
class ForwardingSink final : public api::InferSink {
 public:
  explicit ForwardingSink(std::shared_ptr<Call> call) : call_(std::move(call)) {}

  void OnChunk(const api::InferChunk& chunk) override {
    try {
      call_->OnChunk(chunk);
    } catch (...) {
      VLMD_LOG(Error) << "dropping a streamed chunk: " << StatusFromCurrentException();
    }
  }

  void OnDone(const StatusOr<GenerationResult>& result) override {
    try {
      call_->OnResult(result);
    } catch (...) {
      Status error = StatusFromCurrentException();
      try {
        call_->OnResult(error);
      } catch (...) {
        VLMD_LOG(Error) << "could not finish a call: " << error;
      }
    }
  }

 private:
  std::shared_ptr<Call> call_;
};

void LogDone(const RequestNames& names, const GenerationResult& r) {
  VLMD_LOG(Debug) << names.id << " model=" << names.model << " adapter=" << names.adapter
                  << " prompt=" << r.usage.prompt_tokens
                  << " completion=" << r.usage.completion_tokens
                  << " queue_ms=" << r.timings.queue_ms << " ttft_ms=" << r.timings.ttft_ms
                  << " total_ms=" << r.timings.total_ms;
}

}  // namespace

Status EngineCall::Admit() {
  RETURN_IF_ERROR(AuthorizeCall(env_, *ctx_, method_));
  RETURN_IF_ERROR(env_.state->Get().status());
  if (!env_.state->AcquireSlot(env_.max_concurrent_requests)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many concurrent requests (limit ", env_.max_concurrent_requests, "); retry later"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  holds_slot_ = true;
  return absl::OkStatus();
}

void EngineCall::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  if (holds_slot_) env_.state->ReleaseSlot();
  holds_slot_ = false;
}

Status EngineCall::Submit(const v1::InferRequest& proto, std::shared_ptr<api::InferSink> sink) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return absl::CancelledError("request cancelled by the client before it ran");
  }
  ASSIGN_OR_RETURN(api::InferenceService * service, env_.state->Get());
  ASSIGN_OR_RETURN(api::InferRequest request, FromProto(proto));
  if (request.request_id.empty()) request.request_id = NewRequestId();
  if (request.model.empty()) {
    std::vector<api::ModelInfo> models = service->ListModels();
    if (!models.empty()) request.model = models.front().name;
  }
  request.deadline = SteadyDeadline(ctx_->deadline());
  names_ = {request.request_id, request.model, request.adapter};
  std::shared_ptr<api::CancelHandle> handle;
  RETURN_IF_ERROR(service->Submit(std::move(request), std::move(sink), &handle));
  bool cancel_now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handle_ = handle;
    cancel_now = cancelled_;
  }
  if (cancel_now && handle) handle->Cancel();
  return absl::OkStatus();
}

void EngineCall::Cancel() {
  std::shared_ptr<api::CancelHandle> handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    handle = handle_;
  }
  if (handle) handle->Cancel();
}

// ---- Infer ----

UnaryInferCall::UnaryInferCall(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                               const v1::InferRequest* request, v1::InferResponse* response)
    : call_(env, ctx, kInfer), request_(request), response_(response) {}

grpc::ServerUnaryReactor* UnaryInferCall::Start(const ServiceEnv& env,
                                                grpc::CallbackServerContext* ctx,
                                                const v1::InferRequest* request,
                                                v1::InferResponse* response) {
  auto call = std::make_shared<UnaryInferCall>(env, ctx, request, response);
  call->self_ = call;
  Status admitted = CallNoThrow([&] { return call->call_.Admit(); });
  if (!admitted.ok()) {
    call->FinishOnce(admitted);
    return call.get();
  }
  env.pool->Post([call] {
    auto sink = std::make_shared<ForwardingSink<UnaryInferCall>>(call);
    Status s = CallNoThrow([&] { return call->call_.Submit(*call->request_, sink); });
    if (!s.ok()) call->FinishOnce(s);
  });
  return call.get();
}

void UnaryInferCall::OnResult(const StatusOr<GenerationResult>& result) {
  if (!result.ok()) {
    FinishOnce(result.status());
    return;
  }
  LogDone(call_.names(), *result);
  ToProto(call_.names(), *result, response_);
  FinishOnce(absl::OkStatus());
}

void UnaryInferCall::FinishOnce(const Status& status) {
  std::call_once(finished_, [&] { Finish(call_.Complete(status)); });
}

void UnaryInferCall::OnDone() {
  call_.Release();
  auto keep = std::move(self_);  // may destroy this when the engine is done too
}

// ---- InferStream ----

StreamInferCall::StreamInferCall(const ServiceEnv& env, grpc::CallbackServerContext* ctx,
                                 const v1::InferRequest* request)
    : call_(env, ctx, kInferStream), request_(request) {}

grpc::ServerWriteReactor<v1::InferStreamResponse>* StreamInferCall::Start(
    const ServiceEnv& env, grpc::CallbackServerContext* ctx, const v1::InferRequest* request) {
  auto call = std::make_shared<StreamInferCall>(env, ctx, request);
  call->self_ = call;
  Status admitted = CallNoThrow([&] { return call->call_.Admit(); });
  if (!admitted.ok()) {
    call->EndWith(admitted);
    return call.get();
  }
  env.pool->Post([call] {
    auto sink = std::make_shared<ForwardingSink<StreamInferCall>>(call);
    Status s = CallNoThrow([&] { return call->call_.Submit(*call->request_, sink); });
    if (!s.ok()) call->EndWith(s);
  });
  return call.get();
}

void StreamInferCall::OnChunk(const api::InferChunk& chunk) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_ || ended_) return;
    // The back message can take more output unless it is the one being written.
    bool in_flight_only = writing_ && pending_.size() == 1;
    if (pending_.empty() || in_flight_only || !pending_.back().has_delta()) {
      pending_.emplace_back();
    }
    AppendToProto(chunk, pending_.back().mutable_delta());
  }
  Pump();
}

void StreamInferCall::OnResult(const StatusOr<GenerationResult>& result) {
  if (!result.ok()) {
    EndWith(result.status());
    return;
  }
  LogDone(call_.names(), *result);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_) {
      pending_.emplace_back();
      ToProto(call_.names(), *result, pending_.back().mutable_done());
    }
    ended_ = true;
    final_status_ = absl::OkStatus();
  }
  Pump();
}

void StreamInferCall::EndWith(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    final_status_ = status;
  }
  Pump();
}

void StreamInferCall::Pump() {
  enum class Action { kWrite, kWriteAndFinish, kFinish } action;
  const v1::InferStreamResponse* message = nullptr;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || writing_) return;
    if (broken_) pending_.clear();
    if (!pending_.empty()) {
      writing_ = true;
      message = &pending_.front();
      action = ended_ && final_status_.ok() && pending_.size() == 1 ? Action::kWriteAndFinish
                                                                    : Action::kWrite;
    } else if (ended_) {
      action = Action::kFinish;
    } else {
      return;
    }
    if (action != Action::kWrite) {
      finished_ = true;
      Status final_status = broken_ && final_status_.ok()
                                ? absl::CancelledError("client went away during the stream")
                                : final_status_;
      status = call_.Complete(final_status);
    }
  }
  switch (action) {
    case Action::kWrite:
      StartWrite(message);
      break;
    case Action::kWriteAndFinish:
      StartWriteAndFinish(message, grpc::WriteOptions(), status);
      break;
    case Action::kFinish:
      Finish(status);
      break;
  }
}

void StreamInferCall::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    writing_ = false;
    if (!pending_.empty()) pending_.pop_front();
    if (!ok) broken_ = true;
  }
  if (!ok) call_.Cancel();
  Pump();
}

void StreamInferCall::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    broken_ = true;
  }
  call_.Cancel();
  Pump();
}

void StreamInferCall::OnDone() {
  call_.Release();
  auto keep = std::move(self_);  // may destroy this when the engine is done too
}

}  // namespace vlmd::server
