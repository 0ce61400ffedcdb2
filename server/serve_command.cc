#include "server/serve_command.h"

#include <cstdio>
#include <memory>

#include "server/paths.h"
#include "server/serve.h"

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
  if (c->tokenizer.empty()) c->tokenizer = DefaultTokenizerPath();
  return absl::OkStatus();
}

void AddFlags(CLI::App* cmd, ServeFlags* f) {
  cmd->add_option("-c,--config", f->config_path, "YAML configuration (see deploy/vlmd.yaml)");
  cmd->add_option("--set", f->sets, "Override a config key: key.path=value (YAML value)");
  cmd->add_option("--listen", f->listen, "gRPC address, e.g. 0.0.0.0:50051 (port 0 = any)");
  cmd->add_option("--metrics-listen", f->metrics_listen, "Prometheus address, e.g. 0.0.0.0:9090");
  cmd->add_flag("--no-metrics", f->no_metrics, "Do not start the metrics endpoint");
  cmd->add_option("--model", f->models, "Serve a model: NAME=CHECKPOINT_DIR (repeatable)");
  cmd->add_option("--allowed-root", f->allowed_roots,
                  "Directory clients may name files under (repeatable; replaces the file's)");
  cmd->add_option("--state-dir", f->state_dir, "State directory (jobs database, job dirs)");
  cmd->add_option("--log-level", f->log_level, "debug, info, warning or error");
  cmd->add_option("--ready-file", f->ready_file,
                  "Write {grpc_address, metrics_address, pid} as JSON here once SERVING");
}

}  // namespace

StatusOr<ServeConfig> BuildServeConfig(const ServeFlags& flags) {
  ASSIGN_OR_RETURN(ServeConfig config, LoadServeConfig(flags.config_path, flags.sets));
  RETURN_IF_ERROR(ApplyFlags(flags, &config));
  RETURN_IF_ERROR(ValidateServeConfig(config));
  return config;
}

void AddServeCommand(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("serve", "Serve models over gRPC (vlmd.v1.Inference)");
  auto flags = std::make_shared<ServeFlags>();
  AddFlags(cmd, flags.get());
  cmd->callback([=] {
    *run = [=] {
      StatusOr<ServeConfig> config = BuildServeConfig(*flags);
      if (!config.ok()) {
        std::fprintf(stderr, "vlmd serve: %s\n", std::string(config.status().message()).c_str());
        return 2;
      }
      return RunServe(*config, ServeOptions{flags->ready_file});
    };
  });
}

}  // namespace vlmd::server
