#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace vlmd::server {
namespace {

constexpr absl::string_view kBearer = "bearer ";

}  // namespace

const std::vector<std::pair<absl::string_view, Role>>& MethodRoles() {
  static const auto* roles = new std::vector<std::pair<absl::string_view, Role>>{
      {"/vlmd.v1.Inference/Infer", Role::kInfer},
      {"/vlmd.v1.Inference/InferStream", Role::kInfer},
      {"/vlmd.v1.Inference/ListModels", Role::kInfer},
      {"/vlmd.v1.Inference/ListAdapters", Role::kInfer},
      {"/vlmd.v1.Inference/LoadAdapter", Role::kAdmin},
      {"/vlmd.v1.Inference/UnloadAdapter", Role::kAdmin},
      // Fine-tuning, merges and evaluations: the admin role (issue: fine-tuning service).
      {"/vlmd.v1.Jobs/StartSftJob", Role::kAdmin},
      {"/vlmd.v1.Jobs/GetJobStatus", Role::kAdmin},
      {"/vlmd.v1.Jobs/WatchJob", Role::kAdmin},
      {"/vlmd.v1.Jobs/CancelJob", Role::kAdmin},
      {"/vlmd.v1.Jobs/ListJobs", Role::kAdmin},
      {"/vlmd.v1.Jobs/MergeLora", Role::kAdmin},
      {"/vlmd.v1.Jobs/Evaluate", Role::kAdmin},
  };
  return *roles;
}

Role RequiredRole(absl::string_view method) {
  for (const auto& [m, role] : MethodRoles()) {
    if (m == method) return role;
  }
  return Role::kAdmin;
}

Authenticator::Authenticator(const std::vector<TokenEntry>& tokens) {
  for (const TokenEntry& t : tokens) entries_.push_back({t.name, t.role, Hash(t.token)});
}

Authenticator::Digest Authenticator::Hash(absl::string_view token) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

const Authenticator::Entry* Authenticator::Find(absl::string_view token) const {
  Digest d = Hash(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {  // no early exit: every entry is compared
    bool match = CRYPTO_memcmp(d.data(), e.digest.data(), d.size()) == 0;
    if (match && found == nullptr) found = &e;
  }
  return found;
}

StatusOr<Caller> Authenticator::Authorize(std::optional<absl::string_view> authorization,
                                          absl::string_view method) const {
  if (!enabled()) return Caller{"anonymous", Role::kAdmin};
  if (!authorization) {
    return absl::UnauthenticatedError(
        "missing credentials: send the metadata 'authorization: Bearer <token>'");
  }
  absl::string_view value = *authorization;
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "malformed authorization metadata: expected 'Bearer <token>'");
  }
  const Entry* entry = Find(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
  if (entry == nullptr) return absl::UnauthenticatedError("invalid bearer token");
  Role needed = RequiredRole(method);
  if (static_cast<int>(entry->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat("token '", entry->name, "' has role ",
                                                    RoleName(entry->role), "; ", method,
                                                    " needs role ", RoleName(needed)));
  }
  return Caller{entry->name, entry->role};
}

StatusOr<Caller> Authenticator::Authorize(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    absl::string_view method) const {
  auto it = metadata.find("authorization");
  std::optional<absl::string_view> value;
  if (it != metadata.end()) value = absl::string_view(it->second.data(), it->second.size());
  return Authorize(value, method);
}

}  // namespace vlmd::server
