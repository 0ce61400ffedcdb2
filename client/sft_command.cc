// vlmctl sft: submit a LoRA fine-tuning job with flags named as SWIFT's (`swift sft`), or a
// job.json spec file, and optionally follow it.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/job_view.h"
#include "client/output.h"
#include "nlohmann/json.hpp"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;
using Strings = google::protobuf::RepeatedPtrField<std::string>;

struct SftFlags {
  v1::JobSpec overrides;  // the fields given as flags
  std::string spec_file;  // --spec job.json
  bool watch = false, json = false;
  double retry_s = 60;
};

// One option per spec field, setting it only when given (unset keeps SWIFT's default).
template <typename T>
void Scalar(CLI::App* cmd, SftFlags* f, const char* name, void (v1::JobSpec::*set)(T),
            const char* help) {
  cmd->add_option_function<T>(
      name, [f, set](const T& value) { (f->overrides.*set)(value); }, help);
}

void Text(CLI::App* cmd, SftFlags* f, const char* name, std::string* (v1::JobSpec::*field)(),
          const char* help) {
  cmd->add_option_function<std::string>(
      name, [f, field](const std::string& value) { *(f->overrides.*field)() = value; }, help);
}

CLI::Option* List(CLI::App* cmd, SftFlags* f, const char* name, Strings* (v1::JobSpec::*field)(),
                  const char* help) {
  return cmd->add_option_function<std::vector<std::string>>(
      name,
      [f, field](const std::vector<std::string>& values) {
        for (const std::string& v : values) (f->overrides.*field)()->Add()->assign(v);
      },
      help);
}

void AddDataFlags(CLI::App* cmd, SftFlags* f) {
  Text(cmd, f, "--name", &v1::JobSpec::mutable_name, "Job name (also the served adapter's name)");
  Text(cmd, f, "--model", &v1::JobSpec::mutable_model, "Base checkpoint directory (server)");
  List(cmd, f, "--dataset", &v1::JobSpec::mutable_dataset,
       "Training data files (server paths) or latex-ocr-print / latex-ocr-handwrite");
  List(cmd, f, "--val_dataset", &v1::JobSpec::mutable_val_dataset, "Validation data files");
  Scalar(cmd, f, "--dataset_test_ratio", &v1::JobSpec::set_dataset_test_ratio,
         "Validation share of the training data (0.01)");
  Scalar(cmd, f, "--seed", &v1::JobSpec::set_seed, "Seed of split, order and init (42)");
  Scalar(cmd, f, "--shuffle", &v1::JobSpec::set_shuffle, "Reshuffle every epoch (true)");
  Scalar(cmd, f, "--max_length", &v1::JobSpec::set_max_length,
         "Longest sample in tokens, image tokens included (2048)");
  Scalar(cmd, f, "--min_pixels", &v1::JobSpec::set_min_pixels, "Min resized image pixels");
  Scalar(cmd, f, "--max_pixels", &v1::JobSpec::set_max_pixels, "Max resized image pixels");
}

void AddLoraFlags(CLI::App* cmd, SftFlags* f) {
  Scalar(cmd, f, "--lora_rank", &v1::JobSpec::set_lora_rank, "LoRA rank (8)");
  Scalar(cmd, f, "--lora_alpha", &v1::JobSpec::set_lora_alpha, "LoRA alpha (32)");
  Scalar(cmd, f, "--lora_dropout", &v1::JobSpec::set_lora_dropout, "LoRA dropout (0.05)");
  List(cmd, f, "--target_modules", &v1::JobSpec::mutable_target_modules,
       "DEFAULT (LLM linears), ALL (+ vision tower) or module names")
      ->delimiter(',');
  Scalar(cmd, f, "--use_rslora", &v1::JobSpec::set_use_rslora, "rsLoRA scaling (false)");
  Text(cmd, f, "--init_adapter", &v1::JobSpec::mutable_init_adapter, "Initial adapter dir");
}

void AddOptimizerFlags(CLI::App* cmd, SftFlags* f) {
  Scalar(cmd, f, "--learning_rate", &v1::JobSpec::set_learning_rate, "Peak learning rate (1e-4)");
  Text(cmd, f, "--lr_scheduler_type", &v1::JobSpec::mutable_lr_scheduler_type,
       "cosine, linear or constant (cosine)");
  Scalar(cmd, f, "--warmup_ratio", &v1::JobSpec::set_warmup_ratio, "Warm-up share (0.05)");
  Scalar(cmd, f, "--weight_decay", &v1::JobSpec::set_weight_decay, "AdamW weight decay (0.1)");
  Scalar(cmd, f, "--adam_beta1", &v1::JobSpec::set_adam_beta1, "AdamW beta1 (0.9)");
  Scalar(cmd, f, "--adam_beta2", &v1::JobSpec::set_adam_beta2, "AdamW beta2 (0.95)");
  Scalar(cmd, f, "--adam_epsilon", &v1::JobSpec::set_adam_epsilon, "AdamW epsilon (1e-8)");
  Scalar(cmd, f, "--max_grad_norm", &v1::JobSpec::set_max_grad_norm, "Clipping norm (1; 0 = off)");
  Scalar(cmd, f, "--batch_size", &v1::JobSpec::set_batch_size, "Samples per micro-batch (1)");
  Scalar(cmd, f, "--gradient_accumulation_steps", &v1::JobSpec::set_gradient_accumulation_steps,
         "Micro-batches per step (ceil(16 / batch_size / gpus))");
  Scalar(cmd, f, "--eval_batch_size", &v1::JobSpec::set_eval_batch_size, "Eval batch (1)");
  Scalar(cmd, f, "--num_train_epochs", &v1::JobSpec::set_num_train_epochs, "Epochs (1)");
  Scalar(cmd, f, "--max_steps", &v1::JobSpec::set_max_steps, "Steps; overrides epochs when > 0");
  Scalar(cmd, f, "--gradient_checkpointing", &v1::JobSpec::set_gradient_checkpointing,
         "Recompute activations (true)");
  Text(cmd, f, "--dtype", &v1::JobSpec::mutable_dtype, "auto, float32, bfloat16, float16");
}

void AddRunFlags(CLI::App* cmd, SftFlags* f) {
  Scalar(cmd, f, "--eval_steps", &v1::JobSpec::set_eval_steps, "Evaluate every N steps (50)");
  Scalar(cmd, f, "--save_steps", &v1::JobSpec::set_save_steps, "Save every N steps (50)");
  Scalar(cmd, f, "--logging_steps", &v1::JobSpec::set_logging_steps, "Log every N steps (5)");
  Scalar(cmd, f, "--save_total_limit", &v1::JobSpec::set_save_total_limit,
         "Checkpoints kept; the best is never deleted (2; 0 = all)");
  Text(cmd, f, "--metric_for_best_model", &v1::JobSpec::mutable_metric_for_best_model,
       "Eval metric picking the best checkpoint (loss)");
  Scalar(cmd, f, "--greater_is_better", &v1::JobSpec::set_greater_is_better,
         "Higher metric is better (false)");
  Scalar(cmd, f, "--gpus", &v1::JobSpec::set_gpus,
         "GPUs wanted, one data-parallel rank each; 0 = a CPU slot (1)");
  Scalar(cmd, f, "--processes", &v1::JobSpec::set_processes,
         "Data-parallel ranks of a CPU job (--gpus 0), all-reduced over Gloo (1)");
  Scalar(cmd, f, "--priority", &v1::JobSpec::set_priority, "Higher runs first (0)");
  Text(cmd, f, "--resume_from_checkpoint", &v1::JobSpec::mutable_resume_from_checkpoint,
       "checkpoint-N directory to resume from");
  Scalar(cmd, f, "--predict_with_generate", &v1::JobSpec::set_predict_with_generate,
         "Generation metrics on the validation set at each eval (false)");
  Text(cmd, f, "--generation_eval", &v1::JobSpec::mutable_generation_eval,
       "every_eval or end (every_eval)");
  Scalar(cmd, f, "--generation_max_new_tokens", &v1::JobSpec::set_generation_max_new_tokens,
         "Tokens per generated answer (512)");
  Scalar(cmd, f, "--generation_max_samples", &v1::JobSpec::set_generation_max_samples,
         "Validation samples generated for; 0 = all (0)");
  Scalar(cmd, f, "--generation_batch_size", &v1::JobSpec::set_generation_batch_size,
         "Sequences decoded together (8)");
  cmd->add_option("--spec", f->spec_file, "job.json with the same field names; flags win");
  cmd->add_flag("--watch", f->watch, "Follow the job until it ends (exit 0 when it succeeds)");
  cmd->add_option("--retry", f->retry_s, "With --watch: seconds to reconnect after a restart")
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "Print the job (and with --watch each event) as JSON");
}

// Reads a spec file; `version` and `output_dir` of a job directory's job.json are ignored.
// Returns "" or what is wrong.
std::string ReadSpecFile(const std::string& path, v1::JobSpec* spec) {
  std::ifstream in(path);
  if (!in) return "cannot read spec file '" + path + "'";
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return path + ": not a JSON object";
  j.erase("version");
  j.erase("output_dir");
  google::protobuf::util::JsonParseOptions options;
  auto parsed = google::protobuf::util::JsonStringToMessage(j.dump(), spec, options);
  return parsed.ok() ? "" : path + ": " + std::string(parsed.message());
}

// The spec file (if any) with the flags applied over it; lists given as flags replace the
// file's.
int BuildSpec(const SftFlags& f, v1::JobSpec* spec) {
  if (!f.spec_file.empty()) {
    std::string error = ReadSpecFile(f.spec_file, spec);
    if (!error.empty()) return ReportLocalError(error);
  }
  if (!f.overrides.dataset().empty()) spec->clear_dataset();
  if (!f.overrides.val_dataset().empty()) spec->clear_val_dataset();
  if (!f.overrides.target_modules().empty()) spec->clear_target_modules();
  spec->MergeFrom(f.overrides);
  return kExitOk;
}

int Submit(const SftFlags& f, const ClientOptions& options) {
  v1::StartSftJobRequest request;
  if (int code = BuildSpec(f, request.mutable_spec()); code != kExitOk) return code;
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = v1::Jobs::NewStub(channel);
  grpc::ClientContext context;
  PrepareContext(options, &context);
  v1::StartSftJobResponse response;
  grpc::Status status = stub->StartSftJob(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  const v1::JobStatus& job = response.job();
  if (f.json) {
    std::printf("%s\n", ToJson(response).c_str());
  } else {
    std::printf("%s (%s) %s: %s\n", job.id().c_str(), job.name().c_str(),
                StateName(job.state()).c_str(), job.job_dir().c_str());
  }
  std::fflush(stdout);
  return f.watch ? WatchJob(options, job.id(), f.json, f.retry_s, stdout) : kExitOk;
}

}  // namespace

void AddSftCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("sft", "Start a LoRA fine-tuning job (flags as `swift sft`)");
  auto flags = std::make_shared<SftFlags>();
  AddDataFlags(cmd, flags.get());
  AddLoraFlags(cmd, flags.get());
  AddOptimizerFlags(cmd, flags.get());
  AddRunFlags(cmd, flags.get());
  cmd->callback(
      [flags, &options, run] { *run = [flags, &options] { return Submit(*flags, options); }; });
}

}  // namespace vlmctl
