// The `vlmd serve` command line: a config file plus flags that override it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace vlmd::server {

// Registers `serve` on `app`; when chosen it sets `*run` to start the server.
void AddServeCommand(CLI::App& app, std::function<int()>* run);

}  // namespace vlmd::server
