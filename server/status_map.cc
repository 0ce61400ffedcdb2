#include "server/status_map.h"

#include "core/base/logging.h"

namespace vlmd::server {
namespace {

// The canonical codes: absl's, gRPC's and the name both use.
struct CodeRow {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
  const char* name;
};

constexpr CodeRow kCodes[] = {
    {absl::StatusCode::kOk, grpc::StatusCode::OK, "OK"},
    {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, "CANCELLED"},
    {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN, "UNKNOWN"},
    {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
    {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
    {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
    {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
    {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED,
     "RESOURCE_EXHAUSTED"},
    {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION,
     "FAILED_PRECONDITION"},
    {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED, "ABORTED"},
    {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
    {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
    {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL, "INTERNAL"},
    {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
    {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
    {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
};

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  for (const CodeRow& row : kCodes) {
    if (row.absl_code == status.code()) {
      return grpc::Status(row.grpc_code, std::string(status.message()));
    }
  }
  return grpc::Status(grpc::StatusCode::UNKNOWN, std::string(status.message()));
}

const char* GrpcCodeName(grpc::StatusCode code) {
  for (const CodeRow& row : kCodes) {
    if (row.grpc_code == code) return row.name;
  }
  return "UNKNOWN";
}

Status StatusFromCurrentException() {
  try {
    throw;
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(e.what());
  } catch (const std::out_of_range& e) {
    return absl::InvalidArgumentError(e.what());
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while handling the request");
  } catch (const std::exception& e) {
    VLMD_LOG(Error) << "unexpected exception in a request handler: " << e.what();
    return absl::InternalError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    VLMD_LOG(Error) << "unexpected non-standard exception in a request handler";
    return absl::InternalError("internal error (unknown exception)");
  }
}

}  // namespace vlmd::server
