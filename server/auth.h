// Bearer-token authentication and role checks for every vlmd RPC. gRPC's C++ server
// interceptors cannot fail a call, so each handler asks the Authenticator first (through
// the call helpers in rpc_util.h); the method -> role table lives here, in one place.
#pragma once

#include <grpcpp/support/string_ref.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/status.h"
#include "server/config.h"

namespace vlmd::server {

// Who made a call.
struct Caller {
  std::string name;  // the token's name, or "anonymous" when authentication is off
  Role role = Role::kAdmin;
};

// Every vlmd RPC and the role it needs, in one table ("/vlmd.v1.Inference/Infer" -> kInfer).
// A unit test checks that every rpc of every service in proto/vlmd/v1 has a row, so a new
// method cannot ship without a decision.
const std::vector<std::pair<absl::string_view, Role>>& MethodRoles();

// The role `method` needs: its MethodRoles() row; kAdmin for anything not listed (deny by
// default).
Role RequiredRole(absl::string_view method);

// Checks bearer tokens. Stores only SHA-256 digests and compares them in constant time
// against every configured token. Immutable after construction; thread-safe.
class Authenticator {
 public:
  // No tokens = authentication off: every call is admin.
  explicit Authenticator(const std::vector<TokenEntry>& tokens);

  bool enabled() const { return !entries_.empty(); }

  // Checks the `authorization` header value ("Bearer <token>"; nullopt when absent) against
  // the role `method` needs: UNAUTHENTICATED for a missing, malformed or unknown token,
  // PERMISSION_DENIED for a token whose role is too low.
  StatusOr<Caller> Authorize(std::optional<absl::string_view> authorization,
                             absl::string_view method) const;

  // The same for a call's metadata.
  StatusOr<Caller> Authorize(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                             absl::string_view method) const;

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    std::string name;
    Role role;
    Digest digest;
  };
  static Digest Hash(absl::string_view token);
  // The entry whose token matches, or nullptr; constant time in the number of tokens.
  const Entry* Find(absl::string_view token) const;

  std::vector<Entry> entries_;
};

}  // namespace vlmd::server
