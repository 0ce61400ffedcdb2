// Strict reading of YAML mappings for configuration files: every key that is read is
// remembered, so the rest can be reported as unknown; type errors name the file, line and
// dotted key. Not thread-safe (one reader per parse).
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd::server {

// Applies one "dotted.key=value" assignment to `root` (a mapping, created when null). The
// value is parsed as YAML, so "[a, b]" sets a list and "" sets null. INVALID_ARGUMENT when
// the text has no '=' or a key on the way is not a mapping.
Status ApplyOverride(YAML::Node root, const std::string& assignment);

// The keys of one YAML mapping.
class YamlMap {
 public:
  // `node` must be a mapping or null/undefined (then every key is absent). `path` is the
  // dotted prefix of its keys ("" at the top), `source` names the file in errors.
  static StatusOr<YamlMap> Open(const YAML::Node& node, std::string path, std::string source);

  // Each Read leaves `*out` untouched when the key is absent or null.
  Status Read(const std::string& key, std::string* out);
  Status Read(const std::string& key, int64_t* out);
  Status Read(const std::string& key, int* out);
  Status Read(const std::string& key, double* out);
  Status Read(const std::string& key, bool* out);
  Status Read(const std::string& key, std::vector<std::string>* out);
  Status Read(const std::string& key, std::vector<int>* out);

  // The child node (undefined when absent), marked as known.
  YAML::Node Child(const std::string& key);
  // The keys in document order.
  std::vector<std::string> Keys() const;
  // "limits.max_running" for key "max_running" under "limits".
  std::string KeyPath(const std::string& key) const;
  // INVALID_ARGUMENT "<source>:<line>: '<key path>' <what>".
  Status Error(const YAML::Node& at, const std::string& key, const std::string& what) const;
  // INVALID_ARGUMENT naming the first key that no Read/Child asked for.
  Status CheckUnknownKeys() const;

 private:
  YamlMap(YAML::Node node, std::string path, std::string source)
      : node_(std::move(node)), path_(std::move(path)), source_(std::move(source)) {}
  template <typename T>
  Status ReadScalar(const std::string& key, const char* type, T* out);

  YAML::Node node_;
  std::string path_;
  std::string source_;
  std::set<std::string> known_;
};

// "<source>:<line>" for a node with a position, "<source>" otherwise (overrides).
std::string YamlWhere(const std::string& source, const YAML::Node& node);

}  // namespace vlmd::server
