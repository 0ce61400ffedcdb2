// vlmd: the server (`serve`), the training worker (`train`) and the offline tool.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>

#include "server/offline_commands.h"
#include "server/serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"vlmd: Qwen2-VL serving and LoRA fine-tuning"};
  app.require_subcommand(1);
  std::function<int()> run;
  vlmd::AddOfflineCommands(app, &run);
  vlmd::server::AddServeCommand(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    // Nothing should throw past the core's Status boundary; if something does, say what.
    std::fprintf(stderr, "vlmd: error: %s\n", e.what());
    return 1;
  }
}
