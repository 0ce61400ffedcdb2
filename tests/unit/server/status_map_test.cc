// The one absl::Status -> grpc::Status mapping and the exception guard.
#include "server/status_map.h"

#include <gtest/gtest.h>

namespace vlmd::server {
namespace {

TEST(StatusMap, EveryCanonicalCodeKeepsItsNumberAndMessage) {
  for (int code = 0; code <= 16; ++code) {
    Status s(static_cast<absl::StatusCode>(code), code == 0 ? "" : "what happened");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), code == 0 ? "" : "what happened");
  }
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
}

TEST(StatusMap, ExceptionsBecomeStatuses) {
  Status s = CallNoThrow([]() -> Status { throw std::invalid_argument("bad field x"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bad field x");
  s = CallNoThrow([]() -> Status { throw std::bad_alloc(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  s = CallNoThrow([]() -> Status { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("boom"), std::string::npos);
  s = CallNoThrow([]() -> Status { throw 42; });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  s = CallNoThrow([]() -> Status { return absl::NotFoundError("x"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vlmd::server
