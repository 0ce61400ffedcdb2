// The one status type inside vlmd: absl::Status / absl::StatusOr<T>, plus propagation macros.
// server/ maps these to gRPC codes in exactly one place (server/status_map.cc).
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vlmd {

using absl::Status;
using absl::StatusOr;

}  // namespace vlmd

#define VLMD_CONCAT_INNER_(a, b) a##b
#define VLMD_CONCAT_(a, b) VLMD_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::absl::Status vlmd_status_ = (expr);     \
    if (!vlmd_status_.ok()) return vlmd_status_; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

// `ASSIGN_OR_RETURN(auto x, F())` unwraps a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(VLMD_CONCAT_(vlmd_statusor_, __LINE__), lhs, expr)
