// File helpers shared by every layer: whole-file reads, atomic writes, and the allowed-roots
// check that guards every path a client names.
#pragma once

#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// Reads a whole file. NOT_FOUND if it does not exist; the message names the path.
StatusOr<std::string> ReadFile(const std::string& path);
// Writes `data` to `path` through a temporary file and rename, so readers never see half a file.
Status WriteFileAtomic(const std::string& path, const std::string& data);
// True if `path` exists (file or directory).
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Creates `path` and its parents with the given mode (default rwx for the owner only).
Status MakeDirs(const std::string& path, int mode = 0700);
// Joins two path pieces with exactly one '/'.
std::string JoinPath(const std::string& a, const std::string& b);

// The canonical absolute form of an existing `path` (symlinks resolved), or `path` itself
// when it cannot be resolved. For comparing paths that name the same directory.
std::string CanonicalOrSelf(const std::string& path);

// Resolves `path` (symlinks, "..", ".") and checks that the result lies under one of `roots`
// (themselves canonicalized). Returns the canonical path, or PERMISSION_DENIED naming the path.
// `must_exist` = false allows a path whose last components do not exist yet (output dirs):
// the longest existing prefix is resolved and the rest must contain no "..".
// An empty `roots` list denies everything. Thread-safe.
StatusOr<std::string> ResolveUnderRoots(const std::string& path,
                                        const std::vector<std::string>& roots,
                                        bool must_exist = true);

}  // namespace vlmd
