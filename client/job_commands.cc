// vlmctl status | jobs | cancel | merge: the fine-tuning jobs of the running server.
#include <cstdio>
#include <memory>

#include "client/commands.h"
#include "client/job_view.h"
#include "client/output.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

// Runs one unary Jobs call with the connection settings; prints its result or error.
template <typename Request, typename Response, typename Call, typename Print>
int Invoke(const ClientOptions& options, const Request& request, Call call, Print print) {
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = v1::Jobs::NewStub(channel);
  grpc::ClientContext context;
  PrepareContext(options, &context);
  Response response;
  grpc::Status status = ((*stub).*call)(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  print(response);
  return kExitOk;
}

struct StatusFlags {
  std::string job;
  bool watch = false, json = false;
  double retry_s = 60;
};

void AddStatus(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("status", "Show a job; --watch follows it with a progress bar");
  auto f = std::make_shared<StatusFlags>();
  cmd->add_option("job", f->job, "Job id")->required();
  cmd->add_flag("--watch", f->watch, "Follow the job until it ends (exit 0 when it succeeds)");
  cmd->add_option("--retry", f->retry_s, "With --watch: seconds to reconnect after a restart")
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "Print the status (with --watch: each event) as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      if (f->watch) return WatchJob(options, f->job, f->json, f->retry_s, stdout);
      v1::GetJobStatusRequest request;
      request.set_job_id(f->job);
      return Invoke<v1::GetJobStatusRequest, v1::GetJobStatusResponse>(
          options, request, &v1::Jobs::Stub::GetJobStatus, [f](const v1::GetJobStatusResponse& r) {
            std::printf("%s",
                        f->json ? (ToJson(r.job()) + "\n").c_str() : StatusBlock(r.job()).c_str());
          });
    };
  });
}

struct ListFlags {
  std::string state;
  bool json = false;
};

void AddJobs(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("jobs", "List fine-tuning jobs, oldest first");
  auto f = std::make_shared<ListFlags>();
  cmd->add_option("--state", f->state,
                  "Only jobs in this state (validating, queued, running, succeeded, failed, "
                  "cancelled)");
  cmd->add_flag("--json", f->json, "Print the response as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      v1::ListJobsRequest request;
      if (!f->state.empty()) {
        v1::JobState state;
        if (!ParseState(f->state, &state))
          return ReportLocalError("unknown state '" + f->state + "'");
        request.set_state(state);
      }
      return Invoke<v1::ListJobsRequest, v1::ListJobsResponse>(
          options, request, &v1::Jobs::Stub::ListJobs, [f](const v1::ListJobsResponse& r) {
            if (f->json) {
              std::printf("%s\n", ToJson(r).c_str());
              return;
            }
            std::printf("%s\n", JobsHeader().c_str());
            for (const v1::JobStatus& job : r.jobs()) std::printf("%s\n", JobsRow(job).c_str());
          });
    };
  });
}

void AddCancel(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("cancel", "Cancel a job (its checkpoints are kept)");
  auto f = std::make_shared<StatusFlags>();
  cmd->add_option("job", f->job, "Job id")->required();
  cmd->add_flag("--json", f->json, "Print the job as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      v1::CancelJobRequest request;
      request.set_job_id(f->job);
      return Invoke<v1::CancelJobRequest, v1::CancelJobResponse>(
          options, request, &v1::Jobs::Stub::CancelJob, [f](const v1::CancelJobResponse& r) {
            if (f->json) {
              std::printf("%s\n", ToJson(r.job()).c_str());
            } else if (r.job().state() == v1::JOB_STATE_CANCELLED) {
              std::printf("%s cancelled\n", f->job.c_str());
            } else {
              std::printf("%s: cancel requested; the worker stops after its current step\n",
                          f->job.c_str());
            }
          });
    };
  });
}

struct MergeFlags {
  v1::MergeLoraRequest request;
  std::string job, adapter;
  bool json = false;
};

void AddMerge(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("merge", "Merge a LoRA adapter into its base model");
  auto f = std::make_shared<MergeFlags>();
  v1::MergeLoraRequest* r = &f->request;
  auto* job = cmd->add_option("--job", f->job, "Job whose checkpoint is merged");
  auto* adapter = cmd->add_option("--adapter", f->adapter, "PEFT adapter directory (server)");
  job->excludes(adapter);
  cmd->add_option("--checkpoint", *r->mutable_checkpoint(), "With --job: best, last or a step");
  cmd->add_option("--model", *r->mutable_model(), "Base checkpoint (default with --job: its)");
  cmd->add_option("--out", *r->mutable_output_dir(), "Output directory (server)")->required();
  cmd->add_option("--dtype", *r->mutable_dtype(), "auto, float32, bfloat16 or float16");
  cmd->add_option("--register", *r->mutable_register_as(), "Also serve it under this model name");
  cmd->add_flag("--json", f->json, "Print the response as JSON");
  cmd->callback([f, &options, run] {
    *run = [f, &options] {
      if (f->job.empty() == f->adapter.empty()) {
        return ReportLocalError("merge needs --job JOB or --adapter DIR");
      }
      if (!f->job.empty()) f->request.set_job_id(f->job);
      if (!f->adapter.empty()) f->request.set_adapter_dir(f->adapter);
      return Invoke<v1::MergeLoraRequest, v1::MergeLoraResponse>(
          options, f->request, &v1::Jobs::Stub::MergeLora, [f](const v1::MergeLoraResponse& m) {
            if (f->json) {
              std::printf("%s\n", ToJson(m).c_str());
              return;
            }
            std::printf("merged %lld modules into %lld tensors (%.1f MB) in %.1f s -> %s\n",
                        static_cast<long long>(m.merged_modules()),
                        static_cast<long long>(m.tensors()), m.bytes() / 1e6, m.seconds(),
                        m.output_dir().c_str());
            if (!m.registered_as().empty()) {
              std::printf("served as model %s\n", m.registered_as().c_str());
            }
          });
    };
  });
}

}  // namespace

void AddJobCommands(CLI::App& app, const ClientOptions& options, RunFn* run) {
  AddStatus(app, options, run);
  AddJobs(app, options, run);
  AddCancel(app, options, run);
  AddMerge(app, options, run);
}

}  // namespace vlmctl
