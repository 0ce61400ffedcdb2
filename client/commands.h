// vlmctl's command groups, one file each. Every Add* registers its subcommand(s) on `app`;
// when one is chosen on the command line it sets `*run` to its action, which returns the
// process exit code. `options` is filled by the global flags before the action runs.
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
// vlmctl sft [SWIFT flags] [--spec job.json] [--watch]  (sft_command.cc)
void AddSftCommand(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl status JOB [--watch] | jobs [--state S] | cancel JOB | merge ...  (job_commands.cc)
void AddJobCommands(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl eval --model M [--adapter A | --job J] [--dataset F]...  (eval_command.cc)
void AddEvalCommand(CLI::App& app, const ClientOptions& options, RunFn* run);
// vlmctl chat [--model M] [--adapter A]  (chat_command.cc)
void AddChatCommand(CLI::App& app, const ClientOptions& options, RunFn* run);

}  // namespace vlmctl
