// `vlmd tokenize|dump|generate|init-model`: the offline tool's command lines.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace vlmd {

// Registers the offline subcommands on `app`. Each sets `*run` to its action when chosen;
// an action returns the process exit code.
void AddOfflineCommands(CLI::App& app, std::function<int()>* run);

}  // namespace vlmd
