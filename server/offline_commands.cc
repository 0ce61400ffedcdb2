#include "server/offline_commands.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "core/api/offline.h"
#include "core/api/worker.h"
#include "core/train/merge.h"
#include "core/base/file_util.h"
#include "server/paths.h"

namespace vlmd {
namespace {

int Report(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "vlmd: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

void AddModelFlags(CLI::App* cmd, api::ModelRunOptions* o) {
  cmd->add_option("--model", o->model_dir, "Checkpoint directory")->required();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "float32, bfloat16, float16 or auto")
      ->capture_default_str();
  cmd->add_option("--adapter", o->adapter_dir, "PEFT LoRA adapter directory");
}

void AddTokenize(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("tokenize", "Print token ids of a JSON array of strings");
  auto tokenizer = std::make_shared<std::string>();
  auto texts = std::make_shared<std::string>();
  cmd->add_option("--tokenizer", *tokenizer, "tokenizer.json or a model directory")->required();
  cmd->add_option("--texts", *texts, "JSON file holding an array of strings")->required();
  cmd->callback([=] {
    *run = [=] {
      StatusOr<std::string> data = ReadFile(*texts);
      if (!data.ok()) return Report(data.status());
      auto out = api::Tokenize(*tokenizer, DefaultTokenizerPath(), *data, *texts);
      if (!out.ok()) return Report(out.status());
      std::cout << *out << std::endl;
      return 0;
    };
  });
}

void AddDump(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("dump", "Write the tensors of one forward pass");
  auto o = std::make_shared<api::ModelRunOptions>();
  auto request = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  AddModelFlags(cmd, o.get());
  cmd->add_option("--request", *request, "REQ.json")->required();
  cmd->add_option("--out", *out, "Output .safetensors")->required();
  cmd->callback([=] {
    *run = [=] {
      o->tokenizer_fallback = DefaultTokenizerPath();
      return Report(api::Dump(*o, *request, *out));
    };
  });
}

void AddGenerate(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("generate", "Generate a continuation and print it as JSON");
  auto o = std::make_shared<api::ModelRunOptions>();
  auto s = std::make_shared<SamplingRequest>();
  auto request = std::make_shared<std::string>();
  AddModelFlags(cmd, o.get());
  cmd->add_option("--request", *request, "REQ.json")->required();
  cmd->add_option("--max-new-tokens", s->max_new_tokens, "Tokens to generate at most");
  cmd->add_option("--temperature", s->temperature, "0 = greedy");
  cmd->add_option("--top-p", s->top_p, "Nucleus sampling mass (0, 1]");
  cmd->add_option("--top-k", s->top_k, "Keep the k best tokens (0 = off)");
  cmd->add_option("--repetition-penalty", s->repetition_penalty, "HF repetition penalty");
  cmd->add_option("--seed", s->seed, "Sampling seed");
  cmd->add_option("--stop", s->stop, "Stop string (repeatable)");
  cmd->add_option("--top-logprobs", s->top_logprobs, "Alternatives per token (0-20)");
  cmd->add_flag("--ignore-eos", s->ignore_eos, "Do not stop at end-of-sequence ids");
  cmd->callback([=] {
    *run = [=] {
      o->tokenizer_fallback = DefaultTokenizerPath();
      s->logprobs = true;
      auto out = api::Generate(*o, *request, *s);
      if (!out.ok()) return Report(out.status());
      std::cout << *out << std::endl;
      return 0;
    };
  });
}

void AddInitModel(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("init-model", "Write a randomly initialised checkpoint");
  auto preset = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto seed = std::make_shared<uint64_t>(0);
  auto dtype = std::make_shared<std::string>("auto");
  cmd->add_option("--preset", *preset, "tiny, 2b or 7b")->required();
  cmd->add_option("--out", *out, "Output directory")->required();
  cmd->add_option("--seed", *seed, "Random seed")->capture_default_str();
  cmd->add_option("--dtype", *dtype, "float32, bfloat16 or auto")->capture_default_str();
  cmd->callback([=] {
    *run = [=] {
      return Report(api::InitModel(*preset, *out, *seed, *dtype, DefaultTokenizerPath()));
    };
  });
}

void AddTrain(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("train", "Run a fine-tuning job (the worker the server starts)");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--job", *dir, "Job directory holding job.json")->required();
  cmd->callback([=] { *run = [=] { return api::RunTrainWorker(*dir, DefaultTokenizerPath()); }; });
}

void AddMerge(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("merge", "Merge a LoRA adapter into its base checkpoint");
  auto o = std::make_shared<MergeOptions>();
  cmd->add_option("--model", o->base_dir, "Base checkpoint directory")->required();
  cmd->add_option("--adapter", o->adapter_dir, "PEFT adapter directory")->required();
  cmd->add_option("--out", o->output_dir, "Output directory")->required();
  cmd->add_option("--dtype", o->dtype, "float32, bfloat16, float16 or auto")->capture_default_str();
  cmd->callback([=] {
    *run = [=] {
      StatusOr<MergeStats> stats = MergeAdapter(*o);
      if (!stats.ok()) return Report(stats.status());
      std::printf("merged %lld modules into %lld tensors (%.1f MB) in %.1f s -> %s\n",
                  static_cast<long long>(stats->merged_modules),
                  static_cast<long long>(stats->tensors), stats->bytes / 1e6, stats->seconds,
                  o->output_dir.c_str());
      return 0;
    };
  });
}

}  // namespace

void AddOfflineCommands(CLI::App& app, std::function<int()>* run) {
  AddTokenize(app, run);
  AddDump(app, run);
  AddGenerate(app, run);
  AddInitModel(app, run);
  AddTrain(app, run);
  AddMerge(app, run);
}

}  // namespace vlmd
