#include <grpcpp/generic/generic_stub.h>

#include "tests/e2e/catalogue/catalogue.h"

namespace vlmd::e2e::catalogue {
namespace {

// Waits for the one outstanding operation on `cq`; false when it failed.
bool Wait(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq->Next(&tag, &ok) && ok;
}

}  // namespace

CallResult Send(grpc::Channel* channel, const BadCase& c, double timeout_s) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (!c.raw_authorization.empty()) {
    ctx.AddMetadata("authorization", c.raw_authorization);
  } else if (!c.token.empty()) {
    ctx.AddMetadata("authorization", "Bearer " + c.token);
  }
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&ctx, c.method, &cq);
  CallResult result;
  call->StartCall(nullptr);
  if (Wait(&cq)) {
    grpc::Slice slice(c.request);
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, nullptr);
    if (Wait(&cq)) {
      call->WritesDone(nullptr);
      Wait(&cq);
    }
    grpc::ByteBuffer response;
    for (;;) {
      call->Read(&response, nullptr);
      if (!Wait(&cq)) break;
      ++result.responses;
    }
  }
  call->Finish(&result.status, nullptr);
  Wait(&cq);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

BadCase Case(std::string name, std::string method, const google::protobuf::Message& request,
             grpc::StatusCode code, std::vector<std::string> message) {
  BadCase c;
  c.name = std::move(name);
  c.method = std::move(method);
  c.request = request.SerializeAsString();
  c.code = code;
  c.message = std::move(message);
  return c;
}

v1::InferRequest Text(const std::string& text) {
  v1::InferRequest r;
  v1::ChatMessage* m = r.add_messages();
  m->set_role("user");
  m->add_content()->set_text(text);
  r.mutable_params()->set_max_new_tokens(4);
  r.mutable_params()->set_temperature(0);
  return r;
}

v1::InferRequest WithImage(const std::function<void(v1::Image*)>& set) {
  v1::InferRequest r;
  v1::ChatMessage* m = r.add_messages();
  m->set_role("user");
  set(m->add_content()->mutable_image());
  m->add_content()->set_text("What is this?");
  r.mutable_params()->set_max_new_tokens(4);
  r.mutable_params()->set_temperature(0);
  return r;
}

}  // namespace vlmd::e2e::catalogue
