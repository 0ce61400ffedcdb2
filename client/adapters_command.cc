// vlmctl adapters list|load|unload: LoRA adapters of the running server.
#include <cstdio>
#include <memory>

#include "client/commands.h"
#include "client/output.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

struct AdapterFlags {
  std::string name, path, model;
  bool json = false;
};

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

void PrintAdapter(const v1::AdapterInfo& a) {
  std::printf("%-20s %-20s %5d %7g %7lld %-28s %s\n", a.name().c_str(), a.model().c_str(), a.rank(),
              a.alpha(), static_cast<long long>(a.modules()), Join(a.target_modules()).c_str(),
              a.path().c_str());
}

void PrintHeader() {
  std::printf("%-20s %-20s %5s %7s %7s %-28s %s\n", "NAME", "MODEL", "RANK", "ALPHA", "MODULES",
              "TARGETS", "PATH");
}

// Runs one unary call with the connection settings and prints its result or error.
template <typename Request, typename Response, typename Call, typename Print>
int Invoke(const ClientOptions& options, const Request& request, Call call, Print print) {
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = v1::Inference::NewStub(channel);
  grpc::ClientContext context;
  PrepareContext(options, &context);
  Response response;
  grpc::Status status = ((*stub).*call)(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  print(response);
  return kExitOk;
}

void AddList(CLI::App* group, const ClientOptions& options, RunFn* run) {
  auto* cmd = group->add_subcommand("list", "List the loaded adapters");
  auto f = std::make_shared<AdapterFlags>();
  cmd->add_option("--model", f->model, "Only adapters of this model");
  cmd->add_flag("--json", f->json, "Print the response as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      v1::ListAdaptersRequest request;
      request.set_model(f->model);
      return Invoke<v1::ListAdaptersRequest, v1::ListAdaptersResponse>(
          options, request, &v1::Inference::Stub::ListAdapters,
          [f](const v1::ListAdaptersResponse& r) {
            if (f->json) {
              std::printf("%s\n", ToJson(r).c_str());
              return;
            }
            PrintHeader();
            for (const v1::AdapterInfo& a : r.adapters()) PrintAdapter(a);
          });
    };
  });
}

void AddLoad(CLI::App* group, const ClientOptions& options, RunFn* run) {
  auto* cmd = group->add_subcommand("load", "Load a PEFT adapter directory on the server");
  auto f = std::make_shared<AdapterFlags>();
  cmd->add_option("name", f->name, "Name requests will use")->required();
  cmd->add_option("path", f->path, "Adapter directory on the server")->required();
  cmd->add_option("--model", f->model, "Model it adapts (default: the server's first)");
  cmd->add_flag("--json", f->json, "Print the response as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      v1::LoadAdapterRequest request;
      request.set_name(f->name);
      request.set_path(f->path);
      request.set_model(f->model);
      return Invoke<v1::LoadAdapterRequest, v1::LoadAdapterResponse>(
          options, request, &v1::Inference::Stub::LoadAdapter,
          [f](const v1::LoadAdapterResponse& r) {
            if (f->json) {
              std::printf("%s\n", ToJson(r).c_str());
              return;
            }
            const v1::AdapterInfo& a = r.adapter();
            std::printf("loaded %s for %s (rank %d, alpha %g, %lld modules)\n", a.name().c_str(),
                        a.model().c_str(), a.rank(), a.alpha(),
                        static_cast<long long>(a.modules()));
          });
    };
  });
}

void AddUnload(CLI::App* group, const ClientOptions& options, RunFn* run) {
  auto* cmd = group->add_subcommand("unload", "Unload an adapter");
  auto f = std::make_shared<AdapterFlags>();
  cmd->add_option("name", f->name, "Adapter name")->required();
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      v1::UnloadAdapterRequest request;
      request.set_name(f->name);
      return Invoke<v1::UnloadAdapterRequest, v1::UnloadAdapterResponse>(
          options, request, &v1::Inference::Stub::UnloadAdapter,
          [f](const v1::UnloadAdapterResponse&) { std::printf("unloaded %s\n", f->name.c_str()); });
    };
  });
}

}  // namespace

void AddAdaptersCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* group = app.add_subcommand("adapters", "Manage LoRA adapters (load/unload need admin)");
  group->require_subcommand(1);
  AddList(group, options, run);
  AddLoad(group, options, run);
  AddUnload(group, options, run);
}

}  // namespace vlmctl
