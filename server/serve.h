// `vlmd serve`: loads the models, serves vlmd.v1.Inference over gRPC with health and
// reflection, exports metrics, and drains gracefully on SIGTERM/SIGINT.
#pragma once

#include <string>

#include "server/config.h"

namespace vlmd::server {

// Options of one run that are not part of the configuration file.
struct ServeOptions {
  // When set, a JSON file {"grpc_address", "metrics_address", "pid"} is written here once
  // the server is SERVING (scripts and tests learn the real ports when port 0 was asked).
  std::string ready_file;
};

// Runs the server until SIGTERM/SIGINT; returns the process exit code (0 after a clean
// drain, 1 when startup failed). Blocks the termination signals itself, so call it before
// any other thread has started.
int RunServe(const ServeConfig& config, const ServeOptions& options);

}  // namespace vlmd::server
