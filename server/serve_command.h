// The `vlmd serve` command line: a config file plus flags that override it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "server/config.h"

namespace vlmd::server {

// Flags of `vlmd serve` that override the configuration file.
struct ServeFlags {
  std::string config_path;
  std::vector<std::string> sets;       // --set key.path=value, applied in order
  std::string listen;                  // --listen
  std::string metrics_listen;          // --metrics-listen ("" keeps the file's)
  bool no_metrics = false;             // --no-metrics
  std::vector<std::string> models;     // --model NAME=PATH
  std::vector<std::string> allowed_roots;  // --allowed-root (replaces the file's list)
  std::string state_dir;               // --state-dir
  std::string log_level;               // --log-level
  std::string ready_file;              // --ready-file
};

// Loads the file, applies --set overrides, then the named flags; validates. Errors name the
// file, key or flag.
StatusOr<ServeConfig> BuildServeConfig(const ServeFlags& flags);

// Registers `serve` on `app`; when chosen it sets `*run` to start the server.
void AddServeCommand(CLI::App& app, std::function<int()>* run);

}  // namespace vlmd::server
