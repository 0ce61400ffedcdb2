#include "core/api/worker.h"

#include <ATen/ATen.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/engine/model_bundle.h"
#include "core/train/example.h"
#include "core/train/logging_jsonl_sink.h"
#include "core/train/plot.h"
#include "core/train/progress.h"
#include "core/train/tensorboard.h"
#include "core/train/trainer.h"
#include "core/train/validate.h"

namespace vlmd::api {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// Builds training examples on demand from validated samples.
class SampleSource : public ExampleSource {
 public:
  SampleSource(std::vector<Sample> samples, const ExampleOptions* options)
      : samples_(std::move(samples)), options_(options) {}
  size_t size() const override { return samples_.size(); }
  StatusOr<TrainExample> Get(size_t index) const override {
    ASSIGN_OR_RETURN(TokenizedExample ex, BuildExample(samples_[index], *options_));
    TrainExample out;
    out.ids = std::move(ex.ids);
    out.labels = std::move(ex.labels);
    out.images = ToImageBatch(ex.images);
    return out;
  }

 private:
  std::vector<Sample> samples_;
  const ExampleOptions* options_;
};

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

// Reads and validates data sets; the report goes to the job log.
StatusOr<std::vector<Sample>> LoadSamples(const std::vector<std::string>& names,
                                          const ExampleOptions& examples, const JobSpec& spec,
                                          TrainingSink* sink) {
  const char* root = std::getenv("VLMD_DATA_ROOT");
  std::vector<DatasetSource> sources;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(DatasetSource s, ResolveDatasetName(name, root ? root : ""));
    sources.push_back(std::move(s));
  }
  ValidationOptions options;
  options.max_length = spec.max_length;
  ASSIGN_OR_RETURN(ValidatedDataset v,
                   ValidateDataset(sources, DatasetReadOptions(), examples, options));
  sink->OnLogLine(v.report.Summary());
  if (!v.report.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data set validation failed: ",
                                                   v.report.Summary()));
  }
  return KeepTrainable(std::move(v.samples), v.report);
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
  ASSIGN_OR_RETURN(std::vector<Sample> train, LoadSamples(spec.datasets, examples, spec, sink));
  std::vector<Sample> val;
  if (!spec.val_datasets.empty()) {
    ASSIGN_OR_RETURN(val, LoadSamples(spec.val_datasets, examples, spec, sink));
  } else if (spec.split_ratio > 0) {
    ASSIGN_OR_RETURN(TrainValSplit split,
                     SplitTrainVal(std::move(train), spec.split_ratio, spec.seed));
    train = std::move(split.train);
    val = std::move(split.val);
  }
  sink->OnLogLine(absl::StrCat("training on ", train.size(), " samples, validating on ",
                               val.size(), " (device ", model_options.device, ")"));
  SampleSource train_source(std::move(train), &examples), val_source(std::move(val), &examples);
  Trainer trainer(spec, bundle, &train_source, val_source.size() ? &val_source : nullptr, sink);
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
