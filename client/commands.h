// vlmctl's command groups, one file each. Every Add* registers its subcommand(s) on `app`;
// when one is chosen on the command line it sets `*run` to its action, which returns the
// process exit code. `options` is filled by the global flags before the action runs.
// Later groups (sft, status, jobs, cancel, merge, eval, chat) slot in the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "client/connection.h"

namespace vlmctl {

using RunFn = std::function<int()>;

// vlmctl infer [--image F]... [--image-path P]... [flags] PROMPT  (infer_command.cc)
void AddInferCommand(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl models  (models_command.cc)
void AddModelsCommand(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl adapters list|load|unload  (adapters_command.cc)
void AddAdaptersCommand(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl health  (health_command.cc)
void AddHealthCommand(CLI::App& app, const ClientOptions& options, RunFn* run);

}  // namespace vlmctl
