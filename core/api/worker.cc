#include "core/api/worker.h"

#include <ATen/ATen.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/engine/model_bundle.h"
#include "core/eval/generation_eval.h"
#include "core/train/example.h"
#include "core/train/job_samples.h"
#include "core/train/logging_jsonl_sink.h"
#include "core/train/plot.h"
#include "core/train/progress.h"
#include "core/train/tensorboard.h"
#include "core/train/trainer.h"

namespace vlmd::api {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// The sinks of a worker: progress lines on stdout and in progress.jsonl, logging.jsonl,
// TensorBoard events under runs/, plots under images/.
struct WorkerSinks {
  FanoutSink fanout;
  std::FILE* progress_file = nullptr;
  ~WorkerSinks() {
    if (progress_file != nullptr) std::fclose(progress_file);
  }
};

Status OpenSinks(const std::string& dir, WorkerSinks* sinks) {
  sinks->fanout.Add(std::make_unique<ProgressSink>(stdout));
  sinks->progress_file = std::fopen(JoinPath(dir, "progress.jsonl").c_str(), "a");
  if (sinks->progress_file != nullptr) {
    sinks->fanout.Add(std::make_unique<ProgressSink>(sinks->progress_file));
  }
  ASSIGN_OR_RETURN(auto logging, LoggingJsonlSink::Open(JoinPath(dir, "logging.jsonl")));
  sinks->fanout.Add(std::move(logging));
  ASSIGN_OR_RETURN(auto tensorboard, TensorBoardSink::Create(JoinPath(dir, "runs")));
  sinks->fanout.Add(std::move(tensorboard));
  sinks->fanout.Add(std::make_unique<PlotWriter>(JoinPath(dir, "images")));
  return absl::OkStatus();
}

StatusOr<ModelOptions> WorkerModelOptions(const JobSpec& spec) {
  ModelOptions options;
  options.device = spec.gpus > 0 && at::hasCUDA() ? "cuda" : "cpu";
  if (spec.gpus > 0 && !at::hasCUDA()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the job asks for ", spec.gpus, " GPU(s) but this worker sees no CUDA device"));
  }
  options.dtype = spec.dtype;
  return options;
}

// The generation evaluator of a job with predict_with_generate (else null).
StatusOr<std::unique_ptr<eval::GenerationEvaluator>> MakeGenerationEval(
    const JobSpec& spec, std::shared_ptr<const ModelBundle> bundle, const std::vector<Sample>& val,
    TrainingSink* sink) {
  if (!spec.predict_with_generate || val.empty()) return nullptr;
  ASSIGN_OR_RETURN(auto evaluator,
                   eval::GenerationEvaluator::Create(spec, std::move(bundle), val,
                                                     JoinPath(spec.output_dir, "eval_results")));
  sink->OnLogLine(absl::StrCat("generation metrics on ", evaluator->size(), " validation samples (",
                               spec.generation_eval, ")"));
  return evaluator;
}

Status Train(const JobSpec& spec, const std::string& fallback, TrainingSink* sink,
             int64_t* step_reached) {
  ASSIGN_OR_RETURN(ModelOptions model_options, WorkerModelOptions(spec));
  ASSIGN_OR_RETURN(auto bundle, ModelBundle::Load(spec.model, model_options, fallback));
  if (bundle->tokenizer == nullptr) {
    return absl::FailedPreconditionError("the model has no tokenizer.json; training needs one");
  }
  ASSIGN_OR_RETURN(ExampleOptions examples,
                   MakeExampleOptions(bundle->model->config(), bundle->preprocessor,
                                      bundle->tokenizer, spec.min_pixels, spec.max_pixels));
  ASSIGN_OR_RETURN(JobSamples data,
                   LoadJobSamples(spec, examples, DataRootFromEnvironment(),
                                  [sink](const std::string& line) { sink->OnLogLine(line); }));
  sink->OnLogLine(absl::StrCat("training on ", data.train.size(), " samples, validating on ",
                               data.val.size(), " (device ", model_options.device, ")"));
  ASSIGN_OR_RETURN(auto generation, MakeGenerationEval(spec, bundle, data.val, sink));
  SampleSource train_source(std::move(data.train), &examples);
  SampleSource val_source(std::move(data.val), &examples);
  Trainer trainer(spec, bundle, &train_source, val_source.size() ? &val_source : nullptr, sink);
  trainer.set_eval_extension(generation.get());
  RETURN_IF_ERROR(trainer.Init());
  Status status = trainer.Run(g_stop);
  *step_reached = trainer.progress().global_step;
  if (absl::IsCancelled(status)) RETURN_IF_ERROR(trainer.SaveCheckpointNow());
  return status;
}

std::string OutOfMemoryMessage(const JobSpec& spec, int64_t step) {
  return absl::StrCat(
      "out of memory at step ", step, " (batch_size ", spec.batch_size, ", max_length ",
      spec.max_length, ", max_pixels ",
      spec.max_pixels ? absl::StrCat(*spec.max_pixels) : std::string("model default"),
      "): lower batch_size, max_pixels (e.g. 602112) or max_length, or enable "
      "gradient_checkpointing");
}

}  // namespace

int RunTrainWorker(const std::string& job_dir, const std::string& tokenizer_fallback) {
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  std::string spec_path = JoinPath(job_dir, "job.json");
  StatusOr<std::string> text = ReadFile(spec_path);
  StatusOr<JobSpec> spec = text.ok() ? JobSpec::FromJson(*text, spec_path)
                                     : StatusOr<JobSpec>(text.status());
  WorkerSinks sinks;
  Status opened = OpenSinks(job_dir, &sinks);
  TrainingSink* sink = &sinks.fanout;
  if (!spec.ok() || !opened.ok()) {
    sink->OnState("FAILED", std::string((spec.ok() ? opened : spec.status()).message()));
    return kWorkerFailed;
  }
  if (spec->output_dir.empty()) spec->output_dir = job_dir;
  sink->OnState("RUNNING", "");
  int64_t step = 0;
  Status status;
  try {
    status = Train(*spec, tokenizer_fallback, sink, &step);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.find("out of memory") != std::string::npos) {
      sink->OnState("FAILED", OutOfMemoryMessage(*spec, step));
      return kWorkerOutOfMemory;
    }
    status = absl::InternalError(absl::StrCat("training failed: ", what.substr(0, 400)));
  }
  if (absl::IsCancelled(status)) {
    sink->OnState("CANCELLED", absl::StrCat("stopped at step ", step, "; checkpoints kept"));
    return kWorkerCancelled;
  }
  if (!status.ok()) {
    sink->OnState("FAILED", std::string(status.message()));
    return kWorkerFailed;
  }
  sink->OnState("SUCCEEDED", "");
  return kWorkerOk;
}

}  // namespace vlmd::api
