#include "server/serve_command.h"

#include <cstdio>
#include <memory>

#include "server/paths.h"
#include "server/serve.h"
#include "server/serve_flags.h"

namespace vlmd::server {
namespace {

void AddFlags(CLI::App* cmd, ServeFlags* f) {
  cmd->add_option("-c,--config", f->config_path, "YAML configuration (see deploy/vlmd.yaml)");
  cmd->add_option("--set", f->sets, "Override a config key: key.path=value (YAML value)")
      ->allow_extra_args(false);
  cmd->add_option("--listen", f->listen, "gRPC address, e.g. 0.0.0.0:50051 (port 0 = any)");
  cmd->add_option("--metrics-listen", f->metrics_listen, "Prometheus address, e.g. 0.0.0.0:9090");
  cmd->add_flag("--no-metrics", f->no_metrics, "Do not start the metrics endpoint");
  cmd->add_option("--model", f->models, "Serve a model: NAME=CHECKPOINT_DIR (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--allowed-root", f->allowed_roots,
                  "Directory clients may name files under (repeatable; replaces the file's)")
      ->allow_extra_args(false);
  cmd->add_option("--state-dir", f->state_dir, "State directory (jobs database, job dirs)");
  cmd->add_option("--log-level", f->log_level, "debug, info, warning or error");
  cmd->add_option("--ready-file", f->ready_file,
                  "Write {grpc_address, metrics_address, pid} as JSON here once SERVING");
}

}  // namespace

void AddServeCommand(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("serve", "Serve models over gRPC (vlmd.v1.Inference)");
  auto flags = std::make_shared<ServeFlags>();
  AddFlags(cmd, flags.get());
  cmd->callback([=] {
    *run = [=] {
      StatusOr<ServeConfig> config = BuildServeConfig(*flags, DefaultTokenizerPath());
      if (!config.ok()) {
        std::fprintf(stderr, "vlmd serve: %s\n", std::string(config.status().message()).c_str());
        return 2;
      }
      return RunServe(*config, ServeOptions{flags->ready_file});
    };
  });
}

}  // namespace vlmd::server
