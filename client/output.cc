#include "client/output.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>

namespace vlmctl {

namespace {

// Every gRPC code with its name and the exit code of its class.
struct CodeRow {
  grpc::StatusCode code;
  const char* name;
  int exit_code;
};

constexpr CodeRow kCodes[] = {
    {grpc::StatusCode::OK, "OK", kExitOk},
    {grpc::StatusCode::CANCELLED, "CANCELLED", kExitUnavailable},
    {grpc::StatusCode::UNKNOWN, "UNKNOWN", kExitError},
    {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT", kExitInvalid},
    {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", kExitUnavailable},
    {grpc::StatusCode::NOT_FOUND, "NOT_FOUND", kExitNotFound},
    {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS", kExitNotFound},
    {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED", kExitAuth},
    {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", kExitUnavailable},
    {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION", kExitInvalid},
    {grpc::StatusCode::ABORTED, "ABORTED", kExitUnavailable},
    {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE", kExitInvalid},
    {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED", kExitError},
    {grpc::StatusCode::INTERNAL, "INTERNAL", kExitError},
    {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE", kExitUnavailable},
    {grpc::StatusCode::DATA_LOSS, "DATA_LOSS", kExitError},
    {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED", kExitAuth},
};

}  // namespace

const char* CodeName(grpc::StatusCode code) {
  for (const CodeRow& row : kCodes) {
    if (row.code == code) return row.name;
  }
  return "UNKNOWN";
}

int ExitCodeFor(grpc::StatusCode code) {
  for (const CodeRow& row : kCodes) {
    if (row.code == code) return row.exit_code;
  }
  return kExitError;
}

int ReportError(const grpc::Status& status) {
  std::fprintf(stderr, "vlmctl: %s: %s\n", CodeName(status.error_code()),
               status.error_message().c_str());
  return ExitCodeFor(status.error_code());
}

int ReportLocalError(const std::string& message, int code) {
  std::fprintf(stderr, "vlmctl: %s\n", message.c_str());
  return code;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = pretty;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

}  // namespace vlmctl
