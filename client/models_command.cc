// vlmctl models: the served models.
#include <cstdio>
#include <memory>

#include "client/commands.h"
#include "client/output.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

void PrintTable(const v1::ListModelsResponse& response) {
  std::printf("%-24s %-8s %-9s %14s %22s %s\n", "NAME", "DEVICE", "DTYPE", "PARAMETERS", "PIXELS",
              "PATH");
  for (const v1::ModelInfo& m : response.models()) {
    std::string name = m.name() + (m.is_default() ? " *" : "");
    std::string pixels = std::to_string(m.min_pixels()) + ".." + std::to_string(m.max_pixels());
    std::printf("%-24s %-8s %-9s %14lld %22s %s\n", name.c_str(), m.device().c_str(),
                m.dtype().c_str(), static_cast<long long>(m.parameters()), pixels.c_str(),
                m.path().c_str());
  }
}

}  // namespace

void AddModelsCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("models", "List the served models (* = default)");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print the response as JSON");
  cmd->callback([json, &options, run] {
    *run = [json, &options] {
      std::shared_ptr<grpc::Channel> channel = Connect(options);
      if (channel == nullptr) return static_cast<int>(kExitUsage);
      grpc::ClientContext context;
      PrepareContext(options, &context);
      v1::ListModelsResponse response;
      grpc::Status status =
          v1::Inference::NewStub(channel)->ListModels(&context, v1::ListModelsRequest(), &response);
      if (!status.ok()) return ReportError(status);
      if (*json) {
        std::printf("%s\n", ToJson(response).c_str());
      } else {
        PrintTable(response);
      }
      return static_cast<int>(kExitOk);
    };
  });
}

}  // namespace vlmctl
