// vlmctl infer: one generation request, printed whole, streamed, or as JSON.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/output.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

// Flags of `vlmctl infer`.
struct InferFlags {
  std::string prompt;  // "-" reads stdin
  std::vector<std::string> images, image_paths, stop;
  std::string model, adapter, system, request_id;
  int max_new_tokens = 0, top_k = 0, top_logprobs = 0;
  double temperature = 0, top_p = 0, repetition_penalty = 0;
  uint64_t seed = 0;
  int64_t min_pixels = 0, max_pixels = 0;
  bool logprobs = false, ignore_eos = false, stream = false, json = false, verbose = false;
  // Set options, by name, so that unset differs from 0.
  std::map<std::string, CLI::Option*> opts;
  bool Given(const std::string& name) const { return opts.at(name)->count() > 0; }
};

bool ReadAll(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream data;
  data << in.rdbuf();
  *out = data.str();
  return true;
}

void SetParams(const InferFlags& f, v1::GenerationParams* p) {
  if (f.Given("--max-new-tokens")) p->set_max_new_tokens(f.max_new_tokens);
  if (f.Given("--temperature")) p->set_temperature(f.temperature);
  if (f.Given("--top-p")) p->set_top_p(f.top_p);
  if (f.Given("--top-k")) p->set_top_k(f.top_k);
  if (f.Given("--repetition-penalty")) p->set_repetition_penalty(f.repetition_penalty);
  if (f.Given("--seed")) p->set_seed(f.seed);
  for (const std::string& s : f.stop) p->add_stop(s);
  p->set_logprobs(f.logprobs);
  p->set_top_logprobs(f.top_logprobs);
  p->set_ignore_eos(f.ignore_eos);
}

// Builds the request; returns a non-zero exit code when a local file cannot be read.
int BuildRequest(const InferFlags& f, v1::InferRequest* r) {
  r->set_model(f.model);
  r->set_adapter(f.adapter);
  r->set_request_id(f.request_id);
  if (!f.system.empty()) {
    v1::ChatMessage* system = r->add_messages();
    system->set_role("system");
    system->add_content()->set_text(f.system);
  }
  v1::ChatMessage* user = r->add_messages();
  user->set_role("user");
  for (const std::string& path : f.images) {
    std::string data;
    if (!ReadAll(path, &data)) return ReportLocalError("cannot read image file '" + path + "'");
    user->add_content()->mutable_image()->set_data(std::move(data));
  }
  for (const std::string& path : f.image_paths) {
    user->add_content()->mutable_image()->set_path(path);
  }
  std::string prompt = f.prompt;
  if (prompt == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    prompt = in.str();
  }
  if (!prompt.empty()) user->add_content()->set_text(prompt);
  if (f.Given("--min-pixels")) r->set_min_pixels(f.min_pixels);
  if (f.Given("--max-pixels")) r->set_max_pixels(f.max_pixels);
  SetParams(f, r->mutable_params());
  return kExitOk;
}

void PrintSummary(const std::string& id, v1::FinishReason reason, const v1::Usage& u,
                  const v1::Timings& t) {
  std::fprintf(stderr,
               "[%s] finish=%s prompt=%lld (image %lld) completion=%lld queue=%.1fms "
               "ttft=%.1fms total=%.1fms\n",
               id.c_str(), v1::FinishReason_Name(reason).c_str(),
               static_cast<long long>(u.prompt_tokens()), static_cast<long long>(u.image_tokens()),
               static_cast<long long>(u.completion_tokens()), t.queue_ms(),
               t.time_to_first_token_ms(), t.total_ms());
}

int RunUnary(const InferFlags& f, const ClientOptions& o, v1::Inference::Stub& stub,
             const v1::InferRequest& request) {
  grpc::ClientContext context;
  PrepareContext(o, &context);
  v1::InferResponse response;
  grpc::Status status = stub.Infer(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  if (f.json) {
    std::printf("%s\n", ToJson(response).c_str());
  } else {
    std::printf("%s\n", response.text().c_str());
  }
  if (f.verbose) {
    PrintSummary(response.request_id(), response.finish_reason(), response.usage(),
                 response.timings());
  }
  return kExitOk;
}

int RunStream(const InferFlags& f, const ClientOptions& o, v1::Inference::Stub& stub,
              const v1::InferRequest& request) {
  grpc::ClientContext context;
  PrepareContext(o, &context);
  std::unique_ptr<grpc::ClientReader<v1::InferStreamResponse>> reader =
      stub.InferStream(&context, request);
  v1::InferStreamResponse message;
  while (reader->Read(&message)) {
    if (f.json) {
      std::printf("%s\n", ToJson(message).c_str());
    } else if (message.has_delta()) {
      std::fputs(message.delta().text().c_str(), stdout);
    }
    std::fflush(stdout);
    if (f.verbose && message.has_done()) {
      const v1::InferDone& d = message.done();
      PrintSummary(d.request_id(), d.finish_reason(), d.usage(), d.timings());
    }
  }
  grpc::Status status = reader->Finish();
  if (!f.json) std::printf("\n");
  if (!status.ok()) return ReportError(status);
  return kExitOk;
}

void AddFlags(CLI::App* cmd, InferFlags* f) {
  cmd->add_option("prompt", f->prompt, "The user's message (\"-\" reads stdin)")->required();
  cmd->add_option("--image", f->images, "Local image file sent with the request (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--image-path", f->image_paths,
                  "Image path on the server, under its allowed roots (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--model", f->model, "Served model (default: the server's first)");
  cmd->add_option("--adapter", f->adapter, "Loaded LoRA adapter");
  cmd->add_option("--system", f->system, "System prompt");
  cmd->add_option("--request-id", f->request_id, "Id to find the request in server logs");
  f->opts["--max-new-tokens"] =
      cmd->add_option("--max-new-tokens", f->max_new_tokens, "Tokens to generate at most");
  f->opts["--temperature"] = cmd->add_option("--temperature", f->temperature, "0 = greedy");
  f->opts["--top-p"] = cmd->add_option("--top-p", f->top_p, "Nucleus mass (0, 1]");
  f->opts["--top-k"] = cmd->add_option("--top-k", f->top_k, "Keep the k best tokens (0 = off)");
  f->opts["--repetition-penalty"] = cmd->add_option("--repetition-penalty", f->repetition_penalty,
                                                    "Repetition penalty (1 = off)");
  f->opts["--seed"] = cmd->add_option("--seed", f->seed, "Sampling seed");
  f->opts["--min-pixels"] =
      cmd->add_option("--min-pixels", f->min_pixels, "Lower bound on an image's resized pixels");
  f->opts["--max-pixels"] =
      cmd->add_option("--max-pixels", f->max_pixels, "Upper bound on an image's resized pixels");
  cmd->add_option("--stop", f->stop, "Stop string (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--logprobs", f->logprobs, "Report each token's log-probability");
  cmd->add_option("--top-logprobs", f->top_logprobs, "Alternatives per token (0-20)");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Generate max-new-tokens tokens regardless");
  cmd->add_flag("--stream", f->stream, "Print text as it is generated");
  cmd->add_flag("--json", f->json, "Print the response (or each stream message) as JSON");
  cmd->add_flag("-v,--verbose", f->verbose, "Print finish reason, usage and timings on stderr");
}

}  // namespace

void AddInferCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("infer", "Generate an answer to a prompt (with images)");
  auto flags = std::make_shared<InferFlags>();
  AddFlags(cmd, flags.get());
  cmd->callback([flags, &options, run] {
    *run = [flags, &options] {
      v1::InferRequest request;
      if (int code = BuildRequest(*flags, &request); code != kExitOk) return code;
      std::shared_ptr<grpc::Channel> channel = Connect(options);
      if (channel == nullptr) return static_cast<int>(kExitUsage);
      auto stub = v1::Inference::NewStub(channel);
      return flags->stream ? RunStream(*flags, options, *stub, request)
                           : RunUnary(*flags, options, *stub, request);
    };
  });
}

}  // namespace vlmctl
