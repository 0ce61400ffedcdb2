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

// True when a directory entry exists at `path`, a dangling symbolic link included.
bool EntryExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Splits off trailing components that do not exist yet; resolves the existing prefix. A
// dangling symbolic link counts as existing (and then fails to resolve): creating the output
// "through" it would write wherever it points.
StatusOr<std::string> CanonicalAllowMissing(const std::string& path) {
  std::string existing = path;
  std::string rest;
  while (!EntryExists(existing)) {
    size_t slash = existing.find_last_of('/');
    std::string last = slash == std::string::npos ? existing : existing.substr(slash + 1);
    if (last == ".." || last == ".") {
      return absl::PermissionDeniedError(absl::StrCat("path ", path, " contains '", last,
                                                      "' after a missing directory"));
    }
    if (!last.empty()) rest = rest.empty() ? last : last + "/" + rest;  // "a//b" is "a/b"
    if (slash == std::string::npos) {
      existing = ".";
      break;
    }
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  StatusOr<std::string> base = Canonical(existing);
  if (!base.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "path ", path, ": ", existing, " cannot be resolved (a dangling symbolic link?)"));
  }
  return rest.empty() ? *base : JoinPath(*base, rest);
}

bool UnderAnyRoot(const std::string& resolved, const std::vector<std::string>& roots) {
  for (const std::string& root : roots) {
    StatusOr<std::string> canonical_root = Canonical(root);
    if (canonical_root.ok() && IsUnder(resolved, *canonical_root)) return true;
  }
  return false;
}

}  // namespace

std::string CanonicalOrSelf(const std::string& path) {
  StatusOr<std::string> canonical = Canonical(path);
  return canonical.ok() ? *canonical : path;
}

StatusOr<std::string> ResolveUnderRoots(const std::string& path,
                                        const std::vector<std::string>& roots, bool must_exist) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("path contains a NUL byte");
  }
  // The message never shows the resolved path: it would reveal symlink targets and the
  // server's layout to a client.
  const Status outside =
      absl::PermissionDeniedError(absl::StrCat("path ", path, " is outside the allowed roots"));
  StatusOr<std::string> resolved = must_exist ? Canonical(path) : CanonicalAllowMissing(path);
  if (!resolved.ok()) {
    // NOT_FOUND only for a path that would lie under a root: elsewhere the difference between
    // NOT_FOUND and PERMISSION_DENIED would tell a client which files exist outside the roots.
    if (!must_exist) return resolved.status();
    StatusOr<std::string> where = CanonicalAllowMissing(path);
    return where.ok() && UnderAnyRoot(*where, roots) ? resolved.status() : outside;
  }
  if (UnderAnyRoot(*resolved, roots)) return resolved;
  return outside;
}

}  // namespace vlmd
