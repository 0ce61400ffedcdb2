#include "core/base/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vlmd {

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!PathExists(path)) return absl::NotFoundError(absl::StrCat("file not found: ", path));
    return absl::PermissionDeniedError(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  if (IsDirectory(path)) return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return absl::InternalError(absl::StrCat("short write to ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ",
                                            strerror(errno)));
  }
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  std::string prefix = path[0] == '/' ? "/" : "";
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    prefix = JoinPath(prefix, std::string(part));
    if (IsDirectory(prefix)) continue;
    if (::mkdir(prefix.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("cannot create directory ", prefix, ": ",
                                              strerror(errno)));
    }
  }
  return absl::OkStatus();
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  if (a.back() == '/') return b.front() == '/' ? a + b.substr(1) : a + b;
  return b.front() == '/' ? a + b : a + "/" + b;
}

namespace {

StatusOr<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrCat("path not found: ", path));
  }
  return std::string(buf);
}

bool IsUnder(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// Splits off trailing components that do not exist yet; resolves the existing prefix.
StatusOr<std::string> CanonicalAllowMissing(const std::string& path) {
  std::string existing = path;
  std::string rest;
  while (!PathExists(existing)) {
    size_t slash = existing.find_last_of('/');
    std::string last = slash == std::string::npos ? existing : existing.substr(slash + 1);
    if (last == ".." || last == ".") {
      return absl::PermissionDeniedError(absl::StrCat("path ", path, " contains '", last,
                                                      "' after a missing directory"));
    }
    rest = rest.empty() ? last : last + "/" + rest;
    if (slash == std::string::npos) {
      existing = ".";
      break;
    }
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  ASSIGN_OR_RETURN(std::string base, Canonical(existing));
  return rest.empty() ? base : JoinPath(base, rest);
}

}  // namespace

StatusOr<std::string> ResolveUnderRoots(const std::string& path,
                                        const std::vector<std::string>& roots, bool must_exist) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("path contains a NUL byte");
  }
  StatusOr<std::string> resolved = must_exist ? Canonical(path) : CanonicalAllowMissing(path);
  if (!resolved.ok()) return resolved.status();
  for (const std::string& root : roots) {
    StatusOr<std::string> canonical_root = Canonical(root);
    if (canonical_root.ok() && IsUnder(*resolved, *canonical_root)) return resolved;
  }
  return absl::PermissionDeniedError(
      absl::StrCat("path ", path, " is outside the allowed roots (resolved to ", *resolved, ")"));
}

}  // namespace vlmd
