#include "server/serve_flags.h"

namespace vlmd::server {
namespace {

Status ApplyModelFlag(const std::string& flag, ServeConfig* config) {
  size_t eq = flag.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model '", flag, "' is not of the form NAME=PATH"));
  }
  std::string name = flag.substr(0, eq), path = flag.substr(eq + 1);
  for (ModelEntry& m : config->models) {
    if (m.name == name) {
      m.path = path;
      return absl::OkStatus();
    }
  }
  ModelEntry entry;
  entry.name = name;
  entry.path = path;
  config->models.push_back(entry);
  return absl::OkStatus();
}

Status ApplyFlags(const ServeFlags& f, ServeConfig* c) {
  if (!f.listen.empty()) c->listen = f.listen;
  if (!f.metrics_listen.empty()) c->metrics_listen = f.metrics_listen;
  if (f.no_metrics) c->metrics_listen.clear();
  for (const std::string& m : f.models) RETURN_IF_ERROR(ApplyModelFlag(m, c));
  if (!f.allowed_roots.empty()) c->allowed_roots = f.allowed_roots;
  if (!f.state_dir.empty()) c->state_dir = f.state_dir;
  if (!f.log_level.empty()) c->log_level = f.log_level;
  return absl::OkStatus();
}

}  // namespace

StatusOr<ServeConfig> BuildServeConfig(const ServeFlags& flags,
                                       const std::string& default_tokenizer) {
  ASSIGN_OR_RETURN(ServeConfig config, LoadServeConfig(flags.config_path, flags.sets));
  RETURN_IF_ERROR(ApplyFlags(flags, &config));
  if (config.tokenizer.empty()) config.tokenizer = default_tokenizer;
  RETURN_IF_ERROR(ValidateServeConfig(config));
  return config;
}

}  // namespace vlmd::server
