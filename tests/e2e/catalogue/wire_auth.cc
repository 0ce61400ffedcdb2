// Catalogue rows below the message level (bytes that are not the request message, oversized
// messages, unknown methods) and for authentication on every method.
#include "absl/strings/str_cat.h"
#include "tests/e2e/catalogue/catalogue.h"

namespace vlmd::e2e::catalogue {
namespace {

using grpc::StatusCode;

BadCase Raw(std::string name, std::string method, std::string bytes, StatusCode code,
            std::vector<std::string> message) {
  BadCase c;
  c.name = std::move(name);
  c.method = std::move(method);
  c.request = std::move(bytes);
  c.code = code;
  c.message = std::move(message);
  return c;
}

void AddWireCases(std::vector<BadCase>* out) {
  // Bytes that do not parse as the request message: gRPC's callback server answers
  // UNIMPLEMENTED with an empty message before any handler runs (library behaviour, see
  // docs/security.md); the point of these rows is that nothing else happens.
  const std::vector<std::pair<std::string, std::string>> broken = {
      {"random bytes", "\xde\xad\xbe\xef\x01\x02\x03"},
      {"model (string) sent as a varint", std::string("\x0a\x02", 2) + "\xff\xfe"},
      {"truncated length-delimited field", std::string("\x0a\x10", 2) + "tiny"},
      {"truncated varint", std::string("\x30\xff\xff", 3)},
      {"invalid UTF-8 in model", std::string("\x0a\x02\xc3\x28", 4)},
      {"field number 0", std::string("\x00\x01", 2)},
      {"end-group without start-group", std::string("\x0c", 1)},
  };
  for (const auto& [name, bytes] : broken) {
    for (const char* method : {kInfer, kInferStream, kLoadAdapter}) {
      out->push_back(Raw(absl::StrCat("wire: ", name, " (", method, ")"), method, bytes,
                         StatusCode::UNIMPLEMENTED, {""}));
    }
  }
  for (const char* method : {kInfer, kInferStream}) {
    out->push_back(Raw(absl::StrCat("wire: invalid UTF-8 in request_id (", method, ")"), method,
                       std::string("\x3a\x03\xed\xa0\x80", 5), StatusCode::UNIMPLEMENTED, {""}));
  }
  // A ChatMessage whose text is invalid UTF-8 (nested message).
  std::string text("\x0a\x02\xc3\x28", 4);                                  // ContentPart.text
  std::string part = "\x12" + std::string(1, char(text.size())) + text;     // ChatMessage.content
  std::string message = "\x1a" + std::string(1, char(part.size())) + part;  // messages
  out->push_back(
      Raw("wire: invalid UTF-8 in message text", kInfer, message, StatusCode::UNIMPLEMENTED, {""}));
  v1::InferRequest big = Text();
  big.mutable_messages(0)->add_content()->mutable_image()->set_data(std::string(2 << 20, 'x'));
  out->push_back(Case("oversized message (2 MiB > max_request_bytes)", kInfer, big,
                      StatusCode::RESOURCE_EXHAUSTED, {"larger than max"}));
  out->push_back(Case("oversized message on the stream", kInferStream, big,
                      StatusCode::RESOURCE_EXHAUSTED, {"larger than max"}));
  out->push_back(Raw("oversized LoadAdapter", kLoadAdapter, std::string(3 << 20, '\0'),
                     StatusCode::RESOURCE_EXHAUSTED, {"larger than max"}));
  for (const char* method : {"/vlmd.v1.Inference/Nope", "/vlmd.v1.Nope/Infer",
                             "/vlmd.v1.Inference/infer", "/grpc.health.v1.Health/Nope"}) {
    out->push_back(Raw(absl::StrCat("unknown method ", method), method, Text().SerializeAsString(),
                       StatusCode::UNIMPLEMENTED, {""}));
  }
}

void AddAuthCases(std::vector<BadCase>* out) {
  const std::vector<std::pair<const char*, std::string>> methods = {
      {kInfer, Text().SerializeAsString()},
      {kInferStream, Text().SerializeAsString()},
      {kListModels, ""},
      {kListAdapters, ""},
      {kLoadAdapter, ""},
      {kUnloadAdapter, ""},
  };
  for (const auto& [method, body] : methods) {
    BadCase none = Raw(absl::StrCat("auth: no token (", method, ")"), method, body,
                       StatusCode::UNAUTHENTICATED, {"missing credentials"});
    none.token = "";
    out->push_back(none);
    BadCase wrong = Raw(absl::StrCat("auth: unknown token (", method, ")"), method, body,
                        StatusCode::UNAUTHENTICATED, {"invalid bearer token"});
    wrong.token = "catalogue-wrong-000000000000";
    out->push_back(wrong);
    for (const char* value : {"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", kAdminToken}) {
      BadCase malformed =
          Raw(absl::StrCat("auth: authorization '", value, "' (", method, ")"), method, body,
              StatusCode::UNAUTHENTICATED, {"malformed authorization|invalid bearer token"});
      malformed.raw_authorization = value;
      out->push_back(malformed);
    }
  }
  for (const char* method : {kLoadAdapter, kUnloadAdapter}) {
    BadCase role = Raw(absl::StrCat("auth: infer role on ", method), method, "",
                       StatusCode::PERMISSION_DENIED, {"needs role admin"});
    role.token = kInferToken;
    out->push_back(role);
  }
}

}  // namespace

void AddWireAndAuthCases(const Env&, std::vector<BadCase>* out) {
  AddWireCases(out);
  AddAuthCases(out);
}

}  // namespace vlmd::e2e::catalogue
