// vlmctl: the command-line client of vlmd (gRPC and protobuf only; no libtorch).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "client/commands.h"
#include "client/output.h"

int main(int argc, char** argv) {
  CLI::App app{"vlmctl: client of the vlmd inference and fine-tuning service"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  vlmctl::ClientOptions options;
  vlmctl::AddConnectionFlags(app, &options);
  vlmctl::RunFn run;
  vlmctl::AddInferCommand(app, options, &run);
  vlmctl::AddModelsCommand(app, options, &run);
  vlmctl::AddAdaptersCommand(app, options, &run);
  vlmctl::AddHealthCommand(app, options, &run);
  vlmctl::AddSftCommand(app, options, &run);
  vlmctl::AddJobCommands(app, options, &run);
  vlmctl::AddEvalCommand(app, options, &run);
  vlmctl::AddChatCommand(app, options, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : vlmctl::kExitUsage;
  }
  try {
    return run ? run() : vlmctl::kExitOk;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vlmctl: error: %s\n", e.what());
    return vlmctl::kExitError;
  }
}
