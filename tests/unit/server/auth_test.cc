// Bearer tokens and roles.
#include "server/auth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "vlmd/v1/inference.pb.h"

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
  EXPECT_EQ(RequiredRole("/vlmd.v1.Jobs/StartSftJob"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Jobs/Evaluate"), Role::kAdmin);
  EXPECT_EQ(RequiredRole("/vlmd.v1.Unknown/Method"), Role::kAdmin);  // unlisted = admin
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

namespace vlmd::server {
namespace {

// Every rpc declared in proto/vlmd/v1/*.proto, as "/vlmd.v1.Service/Method" (read from the
// .proto text, so services whose generated code a binary does not link are covered too).
std::vector<std::string> DeclaredMethods() {
  std::vector<std::string> methods;
  const std::regex service(R"(^\s*service\s+(\w+))"), rpc(R"(^\s*rpc\s+(\w+)\s*\()");
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(VLMD_SOURCE_DIR) + "/proto/vlmd/v1")) {
    if (entry.path().extension() != ".proto") continue;
    std::ifstream in(entry.path());
    std::string line, current;
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_search(line, m, service)) current = m[1];
      if (std::regex_search(line, m, rpc)) methods.push_back("/vlmd.v1." + current + "/" + m[1].str());
    }
  }
  return methods;
}

// Roles on every RPC: a new rpc without a row in MethodRoles() fails here (it would be
// admin-only by default; the table makes the decision explicit).
TEST(Auth, EveryDeclaredMethodHasARoleRow) {
  std::vector<std::string> declared = DeclaredMethods();
  ASSERT_GE(declared.size(), 6u);
  std::set<std::string> table;
  for (const auto& [method, role] : MethodRoles()) table.insert(std::string(method));
  for (const std::string& m : declared) {
    EXPECT_TRUE(table.count(m)) << m << " has no row in MethodRoles() (server/auth.cc)";
  }
  // And no stale rows.
  for (const std::string& m : table) {
    EXPECT_NE(std::find(declared.begin(), declared.end(), m), declared.end())
        << m << " is in MethodRoles() but not declared in proto/vlmd/v1";
  }
  // The linked descriptor of the Inference service agrees with the text.
  const google::protobuf::ServiceDescriptor* inference =
      vlmd::v1::InferRequest::descriptor()->file()->FindServiceByName("Inference");
  ASSERT_NE(inference, nullptr);
  for (int i = 0; i < inference->method_count(); ++i) {
    std::string full = "/" + inference->full_name() + "/" + inference->method(i)->name();
    EXPECT_TRUE(table.count(full)) << full;
  }
}

}  // namespace
}  // namespace vlmd::server
