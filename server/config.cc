#include "server/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "server/yaml_reader.h"

namespace vlmd::server {
namespace {

constexpr size_t kMinTokenLength = 16;

Status ReadModel(YamlMap& models, const std::string& name, const std::string& source,
                 ModelEntry* e) {
  e->name = name;
  YAML::Node node = models.Child(name);
  if (node.IsScalar()) {  // shorthand: `name: /path/to/checkpoint`
    e->path = node.Scalar();
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(YamlMap fields, YamlMap::Open(node, models.KeyPath(name), source));
  RETURN_IF_ERROR(fields.Read("path", &e->path));
  RETURN_IF_ERROR(fields.Read("device", &e->device));
  RETURN_IF_ERROR(fields.Read("dtype", &e->dtype));
  return fields.CheckUnknownKeys();
}

Status ReadModels(YamlMap& top, const std::string& source, std::vector<ModelEntry>* out) {
  ASSIGN_OR_RETURN(YamlMap models, YamlMap::Open(top.Child("models"), "models", source));
  for (const std::string& name : models.Keys()) {
    ModelEntry e;
    RETURN_IF_ERROR(ReadModel(models, name, source, &e));
    out->push_back(std::move(e));
  }
  return absl::OkStatus();
}

Status ReadAdapters(YamlMap& top, const std::string& source, std::vector<AdapterEntry>* out) {
  ASSIGN_OR_RETURN(YamlMap adapters, YamlMap::Open(top.Child("adapters"), "adapters", source));
  for (const std::string& name : adapters.Keys()) {
    AdapterEntry e;
    e.name = name;
    ASSIGN_OR_RETURN(YamlMap fields,
                     YamlMap::Open(adapters.Child(name), adapters.KeyPath(name), source));
    RETURN_IF_ERROR(fields.Read("path", &e.path));
    RETURN_IF_ERROR(fields.Read("model", &e.model));
    RETURN_IF_ERROR(fields.CheckUnknownKeys());
    out->push_back(std::move(e));
  }
  return absl::OkStatus();
}

Status ReadLimits(YamlMap& top, const std::string& source, LimitsConfig* l) {
  ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(top.Child("limits"), "limits", source));
  RETURN_IF_ERROR(m.Read("max_request_bytes", &l->max_request_bytes));
  RETURN_IF_ERROR(m.Read("max_concurrent_requests", &l->max_concurrent_requests));
  RETURN_IF_ERROR(m.Read("max_image_bytes", &l->max_image_bytes));
  RETURN_IF_ERROR(m.Read("max_image_pixels", &l->max_image_pixels));
  RETURN_IF_ERROR(m.Read("max_images", &l->max_images));
  RETURN_IF_ERROR(m.Read("max_pixels", &l->max_pixels));
  RETURN_IF_ERROR(m.Read("max_prompt_tokens", &l->max_prompt_tokens));
  RETURN_IF_ERROR(m.Read("max_new_tokens", &l->max_new_tokens));
  RETURN_IF_ERROR(m.Read("max_running", &l->max_running));
  RETURN_IF_ERROR(m.Read("queue_size", &l->queue_size));
  RETURN_IF_ERROR(m.Read("kv_cache_tokens", &l->kv_cache_tokens));
  RETURN_IF_ERROR(m.Read("max_prefill_tokens", &l->max_prefill_tokens));
  return m.CheckUnknownKeys();
}

Status ReadTls(YamlMap& top, const std::string& source, TlsConfig* t) {
  ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(top.Child("tls"), "tls", source));
  RETURN_IF_ERROR(m.Read("cert", &t->cert));
  RETURN_IF_ERROR(m.Read("key", &t->key));
  RETURN_IF_ERROR(m.Read("client_ca", &t->client_ca));
  return m.CheckUnknownKeys();
}

StatusOr<Role> ParseRole(const std::string& text) {
  if (text == "infer") return Role::kInfer;
  if (text == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(absl::StrCat("must be 'infer' or 'admin', got '", text, "'"));
}

// A `tokens:` list of {name, token, role} mappings.
Status ReadTokenList(const YAML::Node& list, const std::string& path, const std::string& source,
                     std::vector<TokenEntry>* out) {
  if (!list.IsDefined() || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(YamlWhere(source, list), ": '", path, "' must be a list of tokens"));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item_path = absl::StrCat(path, "[", i, "]");
    ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(list[i], item_path, source));
    TokenEntry e;
    std::string role = "infer";
    RETURN_IF_ERROR(m.Read("name", &e.name));
    RETURN_IF_ERROR(m.Read("token", &e.token));
    RETURN_IF_ERROR(m.Read("role", &role));
    RETURN_IF_ERROR(m.CheckUnknownKeys());
    StatusOr<Role> parsed = ParseRole(role);
    if (!parsed.ok())
      return m.Error(m.Child("role"), "role", std::string(parsed.status().message()));
    e.role = *parsed;
    if (e.name.empty()) e.name = item_path;
    out->push_back(std::move(e));
  }
  return absl::OkStatus();
}

Status ReadAuth(YamlMap& top, const std::string& source, AuthConfig* a) {
  ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(top.Child("auth"), "auth", source));
  RETURN_IF_ERROR(ReadTokenList(m.Child("tokens"), "auth.tokens", source, &a->tokens));
  RETURN_IF_ERROR(m.Read("tokens_file", &a->tokens_file));
  return m.CheckUnknownKeys();
}

Status ReadMetrics(YamlMap& top, const std::string& source, ServeConfig* c) {
  ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(top.Child("metrics"), "metrics", source));
  RETURN_IF_ERROR(m.Read("listen", &c->metrics_listen));
  return m.CheckUnknownKeys();
}

Status ReadTraining(YamlMap& top, const std::string& source, TrainingConfig* t) {
  ASSIGN_OR_RETURN(YamlMap m, YamlMap::Open(top.Child("training"), "training", source));
  RETURN_IF_ERROR(m.Read("gpus", &t->gpus));
  RETURN_IF_ERROR(m.Read("cpu_slots", &t->cpu_slots));
  RETURN_IF_ERROR(m.Read("data_root", &t->data_root));
  RETURN_IF_ERROR(m.Read("max_attempts", &t->max_attempts));
  return m.CheckUnknownKeys();
}

Status ReadTop(const YAML::Node& root, const std::string& source, ServeConfig* c) {
  ASSIGN_OR_RETURN(YamlMap top, YamlMap::Open(root, "", source));
  RETURN_IF_ERROR(top.Read("listen", &c->listen));
  RETURN_IF_ERROR(ReadModels(top, source, &c->models));
  RETURN_IF_ERROR(ReadAdapters(top, source, &c->adapters));
  RETURN_IF_ERROR(ReadLimits(top, source, &c->limits));
  RETURN_IF_ERROR(ReadTls(top, source, &c->tls));
  RETURN_IF_ERROR(ReadAuth(top, source, &c->auth));
  RETURN_IF_ERROR(ReadMetrics(top, source, c));
  RETURN_IF_ERROR(top.Read("allowed_roots", &c->allowed_roots));
  RETURN_IF_ERROR(top.Read("state_dir", &c->state_dir));
  RETURN_IF_ERROR(ReadTraining(top, source, &c->training));
  RETURN_IF_ERROR(top.Read("log_level", &c->log_level));
  RETURN_IF_ERROR(top.Read("shutdown_grace_seconds", &c->shutdown_grace_seconds));
  RETURN_IF_ERROR(top.Read("tokenizer", &c->tokenizer));
  return top.CheckUnknownKeys();
}

StatusOr<YAML::Node> LoadYaml(const std::string& text, const std::string& source) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    return root;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
}

Status CheckLimits(const LimitsConfig& l) {
  const std::pair<const char*, int64_t> positive[] = {{"max_request_bytes", l.max_request_bytes},
                                                      {"max_image_bytes", l.max_image_bytes},
                                                      {"max_image_pixels", l.max_image_pixels},
                                                      {"max_images", l.max_images},
                                                      {"max_pixels", l.max_pixels},
                                                      {"max_prompt_tokens", l.max_prompt_tokens},
                                                      {"max_new_tokens", l.max_new_tokens},
                                                      {"max_running", l.max_running},
                                                      {"queue_size", l.queue_size},
                                                      {"kv_cache_tokens", l.kv_cache_tokens},
                                                      {"max_prefill_tokens", l.max_prefill_tokens}};
  for (const auto& [name, value] : positive) {
    if (value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("limits.", name, " must be positive, got ", value));
    }
  }
  if (l.max_request_bytes > INT32_MAX) {
    return absl::InvalidArgumentError("limits.max_request_bytes must be below 2 GiB");
  }
  if (l.max_concurrent_requests < 0) {
    return absl::InvalidArgumentError("limits.max_concurrent_requests must be >= 0 (0 = no limit)");
  }
  return absl::OkStatus();
}

Status CheckTokens(const std::vector<TokenEntry>& tokens) {
  std::set<std::string> names, values;
  for (const TokenEntry& t : tokens) {
    if (t.token.size() < kMinTokenLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("token '", t.name, "' is shorter than ", kMinTokenLength, " characters"));
    }
    if (t.token.find_first_of(" \t\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("token '", t.name, "' contains whitespace"));
    }
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("two tokens are named '", t.name, "'"));
    }
    if (!values.insert(t.token).second) {
      return absl::InvalidArgumentError(absl::StrCat("token '", t.name, "' is listed twice"));
    }
  }
  return absl::OkStatus();
}

Status CheckModelsAndAdapters(const ServeConfig& c) {
  if (c.models.empty()) {
    return absl::InvalidArgumentError("no models to serve: add one under 'models' or use --model");
  }
  std::set<std::string> models;
  for (const ModelEntry& m : c.models) {
    if (m.path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("models.", m.name, ".path is not set"));
    }
    models.insert(m.name);
  }
  for (const AdapterEntry& a : c.adapters) {
    if (a.path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("adapters.", a.name, ".path is not set"));
    }
    if (!a.model.empty() && models.count(a.model) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("adapters.", a.name, ".model names '", a.model,
                                                     "', which is not a served model"));
    }
  }
  return absl::OkStatus();
}

Status CheckTraining(const TrainingConfig& t) {
  std::set<int> seen;
  for (int gpu : t.gpus) {
    if (gpu < 0 || !seen.insert(gpu).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("training.gpus must list distinct device ids >= 0 (got ", gpu, ")"));
    }
  }
  if (t.cpu_slots < 0) return absl::InvalidArgumentError("training.cpu_slots must be >= 0");
  if (t.max_attempts < 1) return absl::InvalidArgumentError("training.max_attempts must be >= 1");
  return absl::OkStatus();
}

Status CheckTls(const TlsConfig& t) {
  if (t.cert.empty() != t.key.empty()) {
    return absl::InvalidArgumentError("tls.cert and tls.key must be set together");
  }
  if (!t.client_ca.empty() && t.cert.empty()) {
    return absl::InvalidArgumentError("tls.client_ca (mutual TLS) needs tls.cert and tls.key");
  }
  return absl::OkStatus();
}

}  // namespace

const char* RoleName(Role role) { return role == Role::kAdmin ? "admin" : "infer"; }

StatusOr<ServeConfig> ParseServeConfig(const std::string& yaml_text, const std::string& source,
                                       const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml_text, source));
  for (const std::string& o : overrides) RETURN_IF_ERROR(ApplyOverride(root, o));
  ServeConfig config;
  try {
    RETURN_IF_ERROR(ReadTop(root, source, &config));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return config;
}

StatusOr<std::vector<TokenEntry>> ParseTokensFile(const std::string& yaml_text,
                                                  const std::string& source) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml_text, source));
  std::vector<TokenEntry> tokens;
  try {
    ASSIGN_OR_RETURN(YamlMap top, YamlMap::Open(root, "", source));
    RETURN_IF_ERROR(ReadTokenList(top.Child("tokens"), "tokens", source, &tokens));
    RETURN_IF_ERROR(top.CheckUnknownKeys());
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return tokens;
}

Status ValidateServeConfig(const ServeConfig& c) {
  if (c.listen.empty()) return absl::InvalidArgumentError("listen address is empty");
  RETURN_IF_ERROR(CheckModelsAndAdapters(c));
  RETURN_IF_ERROR(CheckLimits(c.limits));
  RETURN_IF_ERROR(CheckTls(c.tls));
  RETURN_IF_ERROR(CheckTokens(c.auth.tokens));
  RETURN_IF_ERROR(CheckTraining(c.training));
  static const std::set<std::string> kLevels = {"debug", "info", "warning", "error"};
  if (kLevels.count(c.log_level) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_level must be debug, info, warning or error, got '", c.log_level, "'"));
  }
  if (c.shutdown_grace_seconds < 0) {
    return absl::InvalidArgumentError("shutdown_grace_seconds must be >= 0");
  }
  return absl::OkStatus();
}

StatusOr<ServeConfig> LoadServeConfig(const std::string& path,
                                      const std::vector<std::string>& overrides) {
  std::string text;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(text, ReadFile(path));
  }
  ASSIGN_OR_RETURN(ServeConfig config,
                   ParseServeConfig(text, path.empty() ? "command line" : path, overrides));
  if (!config.auth.tokens_file.empty()) {
    ASSIGN_OR_RETURN(std::string tokens_text, ReadFile(config.auth.tokens_file));
    struct stat st;
    if (::stat(config.auth.tokens_file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      VLMD_LOG(Warning) << "auth.tokens_file " << config.auth.tokens_file << " has mode "
                        << std::oct << (st.st_mode & 0777) << std::dec
                        << ": other users can read the tokens (chmod 600)";
    }
    ASSIGN_OR_RETURN(std::vector<TokenEntry> more,
                     ParseTokensFile(tokens_text, config.auth.tokens_file));
    for (TokenEntry& t : more) config.auth.tokens.push_back(std::move(t));
  }
  return config;
}

api::InferenceConfig ToInferenceConfig(const ServeConfig& c) {
  api::InferenceConfig out;
  for (const ModelEntry& m : c.models) out.models.push_back({m.name, m.path, m.device, m.dtype});
  const LimitsConfig& l = c.limits;
  out.limits.max_running = l.max_running;
  out.limits.max_waiting = l.queue_size;
  out.limits.max_prompt_tokens = l.max_prompt_tokens;
  out.limits.max_new_tokens = l.max_new_tokens;
  out.limits.kv_cache_tokens = l.kv_cache_tokens;
  out.limits.max_prefill_tokens = l.max_prefill_tokens;
  out.images.allowed_roots = c.allowed_roots;  // always set: no roots = no server paths
  out.images.decode.max_bytes = l.max_image_bytes;
  out.images.decode.max_pixels = l.max_image_pixels;
  out.images.max_images = l.max_images;
  out.images.max_pixels_limit = l.max_pixels;
  out.tokenizer_fallback = c.tokenizer;
  return out;
}

api::JobServiceConfig ToJobServiceConfig(const ServeConfig& c) {
  api::JobServiceConfig out;
  out.state_dir = c.state_dir;
  out.training_gpus = c.training.gpus;
  out.cpu_slots = c.training.cpu_slots;
  out.data_root = c.training.data_root;
  out.allowed_roots = c.allowed_roots;
  out.max_attempts = c.training.max_attempts;
  out.tokenizer_fallback = c.tokenizer;
  return out;
}

}  // namespace vlmd::server
