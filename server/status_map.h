// The one place where vlmd's absl::Status becomes a grpc::Status, and the guard that keeps
// exceptions from reaching gRPC.
#pragma once

#include <grpcpp/support/status.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "core/base/status.h"

namespace vlmd::server {

// Maps a status to gRPC: same canonical code, same message. The codes of absl and gRPC are
// the same numbers by design; the switch keeps that explicit. Thread-safe.
grpc::Status ToGrpcStatus(const Status& status);

// The canonical name of a gRPC code, e.g. "INVALID_ARGUMENT" (metrics labels, client errors).
const char* GrpcCodeName(grpc::StatusCode code);

// Turns the exception being handled into a status: std::invalid_argument and
// std::out_of_range become INVALID_ARGUMENT, std::bad_alloc RESOURCE_EXHAUSTED, anything else
// INTERNAL. Call only from inside a catch block.
Status StatusFromCurrentException();

// Runs `fn` (returning Status) and converts any exception it throws with
// StatusFromCurrentException, so that no exception escapes into gRPC.
template <typename Fn>
Status CallNoThrow(Fn&& fn) {
  try {
    return fn();
  } catch (...) {
    return StatusFromCurrentException();
  }
}

}  // namespace vlmd::server
