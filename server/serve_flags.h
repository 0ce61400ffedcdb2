// The flags of `vlmd serve` that override its configuration file, and how they combine.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/base/status.h"
#include "server/config.h"

namespace vlmd::server {

// Flags of `vlmd serve` that override the configuration file.
struct ServeFlags {
  std::string config_path;
  std::vector<std::string> sets;           // --set key.path=value, applied in order
  std::string listen;                      // --listen
  std::string metrics_listen;              // --metrics-listen ("" keeps the file's)
  bool no_metrics = false;                 // --no-metrics
  std::vector<std::string> models;         // --model NAME=PATH
  std::vector<std::string> allowed_roots;  // --allowed-root (replaces the file's list)
  std::string state_dir;                   // --state-dir
  std::string log_level;                   // --log-level
  std::string ready_file;                  // --ready-file
};

// Loads the file, applies --set overrides, then the named flags, then defaults the tokenizer
// to `default_tokenizer`; validates. Errors name the file, key or flag.
StatusOr<ServeConfig> BuildServeConfig(const ServeFlags& flags,
                                       const std::string& default_tokenizer);

}  // namespace vlmd::server
