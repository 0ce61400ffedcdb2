#include "server/yaml_reader.h"

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vlmd::server {
namespace {

// Sets root[keys[i]][keys[i+1]]... = value, creating mappings on the way.
Status SetPath(YAML::Node node, const std::vector<std::string>& keys, size_t i,
               const YAML::Node& value, const std::string& assignment) {
  if (!node.IsMap() && !node.IsNull() && node.IsDefined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "': '",
                     absl::StrJoin(keys.begin(), keys.begin() + i, "."), "' is not a mapping"));
  }
  if (i + 1 == keys.size()) {
    node[keys[i]] = value;
    return absl::OkStatus();
  }
  return SetPath(node[keys[i]], keys, i + 1, value, assignment);
}

}  // namespace

std::string YamlWhere(const std::string& source, const YAML::Node& node) {
  if (node.IsDefined() && !node.Mark().is_null()) {
    return absl::StrCat(source, ":", node.Mark().line + 1);
  }
  return source;
}

Status ApplyOverride(YAML::Node root, const std::string& assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "' is not of the form key.path=value"));
  }
  std::vector<std::string> keys = absl::StrSplit(assignment.substr(0, eq), '.');
  for (const std::string& k : keys) {
    if (k.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("override '", assignment, "' has an empty key"));
    }
  }
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "': bad YAML value: ", e.msg));
  }
  return SetPath(root, keys, 0, value, assignment);
}

StatusOr<YamlMap> YamlMap::Open(const YAML::Node& node, std::string path, std::string source) {
  if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(YamlWhere(source, node), ": '",
                                                   path.empty() ? "(top level)" : path,
                                                   "' must be a mapping of keys to values"));
  }
  return YamlMap(node, std::move(path), std::move(source));
}

std::string YamlMap::KeyPath(const std::string& key) const {
  return path_.empty() ? key : absl::StrCat(path_, ".", key);
}

Status YamlMap::Error(const YAML::Node& at, const std::string& key, const std::string& what) const {
  const YAML::Node& where = at.IsDefined() && !at.Mark().is_null() ? at : node_;
  return absl::InvalidArgumentError(
      absl::StrCat(YamlWhere(source_, where), ": '", KeyPath(key), "' ", what));
}

YAML::Node YamlMap::Child(const std::string& key) {
  known_.insert(key);
  if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node& const_node = node_;
  return const_node[key];
}

std::vector<std::string> YamlMap::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsDefined() || !node_.IsMap()) return keys;
  for (const auto& kv : node_) keys.push_back(kv.first.as<std::string>());
  return keys;
}

template <typename T>
Status YamlMap::ReadScalar(const std::string& key, const char* type, T* out) {
  YAML::Node child = Child(key);
  if (!child.IsDefined() || child.IsNull()) return absl::OkStatus();
  if (!child.IsScalar()) return Error(child, key, absl::StrCat("must be ", type));
  try {
    *out = child.as<T>();
  } catch (const YAML::Exception&) {
    return Error(child, key, absl::StrCat("must be ", type, ", got '", child.Scalar(), "'"));
  }
  return absl::OkStatus();
}

Status YamlMap::Read(const std::string& key, std::string* out) {
  return ReadScalar(key, "a string", out);
}
Status YamlMap::Read(const std::string& key, int64_t* out) {
  return ReadScalar(key, "an integer", out);
}
Status YamlMap::Read(const std::string& key, int* out) {
  return ReadScalar(key, "an integer", out);
}
Status YamlMap::Read(const std::string& key, double* out) {
  return ReadScalar(key, "a number", out);
}
Status YamlMap::Read(const std::string& key, bool* out) {
  return ReadScalar(key, "true or false", out);
}

Status YamlMap::Read(const std::string& key, std::vector<std::string>* out) {
  YAML::Node child = Child(key);
  if (!child.IsDefined() || child.IsNull()) return absl::OkStatus();
  if (!child.IsSequence()) return Error(child, key, "must be a list of strings");
  std::vector<std::string> values;
  for (const YAML::Node& item : child) {
    if (!item.IsScalar()) return Error(item, key, "must be a list of strings");
    values.push_back(item.Scalar());
  }
  *out = std::move(values);
  return absl::OkStatus();
}

Status YamlMap::Read(const std::string& key, std::vector<int>* out) {
  YAML::Node child = Child(key);
  if (!child.IsDefined() || child.IsNull()) return absl::OkStatus();
  if (!child.IsSequence()) return Error(child, key, "must be a list of integers");
  std::vector<int> values;
  for (const YAML::Node& item : child) {
    try {
      if (!item.IsScalar()) throw YAML::Exception(item.Mark(), "not a scalar");
      values.push_back(item.as<int>());
    } catch (const YAML::Exception&) {
      return Error(item, key, "must be a list of integers");
    }
  }
  *out = std::move(values);
  return absl::OkStatus();
}

Status YamlMap::CheckUnknownKeys() const {
  if (!node_.IsDefined() || !node_.IsMap()) return absl::OkStatus();
  for (const auto& kv : node_) {
    std::string key = kv.first.as<std::string>();
    if (known_.count(key) == 0) {
      std::vector<std::string> known(known_.begin(), known_.end());
      return absl::InvalidArgumentError(
          absl::StrCat(YamlWhere(source_, kv.first), ": unknown key '", KeyPath(key),
                       "' (known keys here: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vlmd::server
