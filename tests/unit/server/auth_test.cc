// Bearer tokens and roles.
#include "server/auth.h"

#include <gtest/gtest.h>

namespace vlmd::server {
namespace {

const std::vector<TokenEntry> kTokens = {{"ci", "infer-token-0123456789", Role::kInfer},
                                         {"ops", "admin-token-0123456789", Role::kAdmin}};

TEST(Auth, RequiredRoles) {
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/Infer"), Role::kInfer);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/InferStream"), Role::kInfer);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/ListModels"), Role::kInfer);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/ListAdapters"), Role::kInfer);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/LoadAdapter"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Inference/UnloadAdapter"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Jobs/StartSftJob"), Role::kAdmin);  // unlisted = admin
  EXPECT_EQ(RequiredRole(""), Role::kAdmin);
}

TEST(Auth, DisabledWithoutTokens) {
  Authenticator auth({});
  EXPECT_FALSE(auth.enabled());
  StatusOr<Caller> c = auth.Authorize(std::nullopt, "/vlmd.v1.Inference/LoadAdapter");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->role, Role::kAdmin);
}

TEST(Auth, MissingMalformedAndWrongTokens) {
  Authenticator auth(kTokens);
  const char* infer = "/vlmd.v1.Inference/Infer";
  EXPECT_EQ(auth.Authorize(std::nullopt, infer).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authorize("infer-token-0123456789", infer).status().code(),
            absl::StatusCode::kUnauthenticated);  // no scheme
  EXPECT_EQ(auth.Authorize("Basic infer-token-0123456789", infer).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authorize("Bearer ", infer).status().code(), absl::StatusCode::kUnauthenticated);
  StatusOr<Caller> wrong = auth.Authorize("Bearer infer-token-012345678X", infer);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  // The error never echoes what was sent.
  EXPECT_EQ(wrong.status().message().find("012345678X"), std::string::npos);
  EXPECT_EQ(auth.Authorize("Bearer infer-token-01234567890", infer).status().code(),
            absl::StatusCode::kUnauthenticated);  // a prefix match is no match
}

TEST(Auth, RolesAndSchemeCase) {
  Authenticator auth(kTokens);
  StatusOr<Caller> c = auth.Authorize("Bearer infer-token-0123456789", "/vlmd.v1.Inference/Infer");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "ci");
  EXPECT_TRUE(auth.Authorize("bearer infer-token-0123456789", "/vlmd.v1.Inference/Infer").ok());
  StatusOr<Caller> denied =
      auth.Authorize("Bearer infer-token-0123456789", "/vlmd.v1.Inference/LoadAdapter");
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("needs role admin"), std::string::npos)
      << denied.status();
  EXPECT_EQ(denied.status().message().find("infer-token"), std::string::npos);
  StatusOr<Caller> admin =
      auth.Authorize("Bearer admin-token-0123456789", "/vlmd.v1.Inference/LoadAdapter");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->name, "ops");
  EXPECT_TRUE(auth.Authorize("Bearer admin-token-0123456789", "/vlmd.v1.Inference/Infer").ok());
}

TEST(Auth, ReadsCallMetadata) {
  Authenticator auth(kTokens);
  std::string key = "authorization", value = "Bearer admin-token-0123456789";
  std::multimap<grpc::string_ref, grpc::string_ref> metadata;
  EXPECT_EQ(auth.Authorize(metadata, "/vlmd.v1.Inference/Infer").status().code(),
            absl::StatusCode::kUnauthenticated);
  metadata.emplace(grpc::string_ref(key), grpc::string_ref(value));
  EXPECT_TRUE(auth.Authorize(metadata, "/vlmd.v1.Inference/UnloadAdapter").ok());
}

}  // namespace
}  // namespace vlmd::server
