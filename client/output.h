// How vlmctl reports: exit codes by error class, error lines on stderr, JSON on stdout.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <string>

namespace vlmctl {

// Exit codes: one per class of failure, so scripts can tell a bad request from an outage.
enum ExitCode {
  kExitOk = 0,
  kExitError = 1,        // INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, other failures
  kExitUsage = 2,        // bad command line or unreadable local file
  kExitInvalid = 3,      // INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION
  kExitNotFound = 4,     // NOT_FOUND, ALREADY_EXISTS
  kExitAuth = 5,         // UNAUTHENTICATED, PERMISSION_DENIED
  kExitUnavailable = 6,  // UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED,
                         // ABORTED; also `health` when not SERVING
};

// "INVALID_ARGUMENT" for a code.
const char* CodeName(grpc::StatusCode code);

// The exit code of a failed call's class.
int ExitCodeFor(grpc::StatusCode code);

// Prints "vlmctl: CODE_NAME: message" on stderr and returns ExitCodeFor(code).
int ReportError(const grpc::Status& status);

// Prints "vlmctl: message" on stderr and returns `code`.
int ReportLocalError(const std::string& message, int code = kExitUsage);

// The message as JSON (proto field names; compact unless `pretty`).
std::string ToJson(const google::protobuf::Message& message, bool pretty = false);

}  // namespace vlmctl
