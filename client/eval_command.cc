// vlmctl eval: score a served model (or adapter, or a job's checkpoint) on a data set; prints
// the summary and where results.jsonl lies.
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>

#include "client/commands.h"
#include "client/output.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

struct EvalFlags {
  v1::EvaluateRequest request;
  int max_new_tokens = 0;
  double temperature = 0;
  bool no_teacher_forced = false, json = false, verbose = false;
  std::map<std::string, CLI::Option*> opts;
  bool Given(const std::string& name) const { return opts.at(name)->count() > 0; }
};

void AddFlags(CLI::App* cmd, EvalFlags* f) {
  v1::EvaluateRequest* r = &f->request;
  cmd->add_option("--model", *r->mutable_model(), "Served model (default: the server's first)");
  auto* adapter = cmd->add_option("--adapter", *r->mutable_adapter(), "Loaded adapter");
  auto* job = cmd->add_option("--job", *r->mutable_job_id(), "Evaluate this job's checkpoint");
  adapter->excludes(job);
  cmd->add_option("--checkpoint", *r->mutable_checkpoint(), "With --job: best, last or a step");
  cmd->add_option_function<std::vector<std::string>>(
      "--dataset",
      [r](const std::vector<std::string>& files) {
        for (const std::string& file : files) r->add_dataset(file);
      },
      "Data files (server paths; default with --job: its validation split)");
  cmd->add_option_function<int64_t>(
      "--max-samples", [r](int64_t n) { r->set_max_samples(n); }, "At most N samples");
  cmd->add_option_function<int>(
      "--concurrency", [r](int n) { r->set_concurrency(n); }, "Requests in flight (8)");
  cmd->add_option("--out", *r->mutable_output_dir(), "Directory for results.jsonl (server)");
  f->opts["--max-new-tokens"] =
      cmd->add_option("--max-new-tokens", f->max_new_tokens, "Tokens per answer at most");
  f->opts["--temperature"] = cmd->add_option("--temperature", f->temperature, "0 = greedy");
  cmd->add_flag("--no-teacher-forced", f->no_teacher_forced, "Skip eval_loss / eval_acc");
  cmd->add_flag("--json", f->json, "Print the summary as JSON");
  cmd->add_flag("-v,--verbose", f->verbose, "Print each sample's prediction on stderr");
}

// "12/40 samples" redrawn on a terminal's stderr; each sample with -v.
void ShowProgress(const EvalFlags& f, const v1::EvalProgress& p, bool tty) {
  if (f.verbose && p.has_sample()) {
    const v1::EvalSample& s = p.sample();
    std::fprintf(stderr, "%s%s: %s%s\n", tty ? "\r\033[K" : "", s.source().c_str(),
                 s.prediction().c_str(), s.exact_match() ? "  (exact)" : "");
  }
  if (tty) {
    std::fprintf(stderr, "\r\033[K%lld/%lld samples", static_cast<long long>(p.done()),
                 static_cast<long long>(p.total()));
  }
}

void PrintSummary(const v1::EvalSummary& s) {
  std::printf("samples:             %lld\n", static_cast<long long>(s.samples()));
  std::printf("exact_match:         %.4f\n", s.exact_match());
  std::printf("edit_distance:       %.4f (characters)\n", s.edit_distance_char());
  std::printf("edit_distance_token: %.4f\n", s.edit_distance_token());
  std::printf("bleu:                %.4f\n", s.bleu());
  if (s.has_eval_loss()) std::printf("eval_loss:           %.4f\n", s.eval_loss());
  if (s.has_eval_acc()) std::printf("eval_acc:            %.4f\n", s.eval_acc());
  std::printf("time:                %.1f s (%.2f samples/s)\n", s.seconds(),
              s.samples_per_second());
  std::printf("results:             %s\n", s.results_path().c_str());
}

int Run(EvalFlags& f, const ClientOptions& options) {
  if (f.Given("--max-new-tokens")) f.request.mutable_params()->set_max_new_tokens(f.max_new_tokens);
  if (f.Given("--temperature")) f.request.mutable_params()->set_temperature(f.temperature);
  if (f.no_teacher_forced) f.request.set_teacher_forced(false);
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = v1::Jobs::NewStub(channel);
  grpc::ClientContext context;
  PrepareStreamContext(options, &context);
  auto reader = stub->Evaluate(&context, f.request);
  const bool tty = isatty(STDERR_FILENO);
  v1::EvaluateResponse message;
  v1::EvalSummary summary;
  bool has_summary = false;
  while (reader->Read(&message)) {
    if (message.has_progress()) ShowProgress(f, message.progress(), tty);
    if (message.has_summary()) {
      summary = message.summary();
      has_summary = true;
    }
  }
  if (tty) std::fputs("\r\033[K", stderr);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return ReportError(status);
  if (!has_summary) return ReportLocalError("the server sent no summary", kExitError);
  if (f.json) {
    std::printf("%s\n", ToJson(summary).c_str());
  } else {
    PrintSummary(summary);
  }
  return kExitOk;
}

}  // namespace

void AddEvalCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model or adapter on a data set");
  auto flags = std::make_shared<EvalFlags>();
  AddFlags(cmd, flags.get());
  cmd->callback(
      [flags, &options, run] { *run = [flags, &options] { return Run(*flags, options); }; });
}

}  // namespace vlmctl
