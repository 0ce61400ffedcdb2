#include "core/api/worker.h"

#include <ATen/ATen.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/engine/model_bundle.h"
#include "core/eval/generation_eval.h"
#include "core/train/distributed.h"
#include "core/train/example.h"
#include "core/train/job_samples.h"
#include "core/train/logging_jsonl_sink.h"
#include "core/train/plot.h"
#include "core/train/progress.h"
#include "core/train/tensorboard.h"
#include "core/train/trainer.h"

extern char** environ;

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

// The sink of a rank other than 0: its log lines and failures go to stderr (worker.log); its
// metrics equal rank 0's and are dropped.
class PeerRankSink : public TrainingSink {
 public:
  explicit PeerRankSink(int rank) : rank_(rank) {}
  void OnLogLine(const std::string& line) override {
    std::fprintf(stderr, "rank %d: %s\n", rank_, line.c_str());
  }
  void OnState(const std::string& state, const std::string& message) override {
    if (!message.empty())
      std::fprintf(stderr, "rank %d: %s: %s\n", rank_, state.c_str(), message.c_str());
  }

 private:
  int rank_;
};

// The ranks 1..N-1 this worker started as rank 0 of a data-parallel job: the same binary and
// arguments, the torchrun environment, stdout onto stderr (only rank 0 reports on stdout), in
// the worker's process group (a signal to the job reaches every rank).
class PeerRanks {
 public:
  ~PeerRanks() { Stop(); }

  Status Start(int world_size, int port) {
    std::vector<std::string> args;
    StatusOr<std::string> cmdline = ReadFile("/proc/self/cmdline");
    if (!cmdline.ok()) return cmdline.status();
    for (size_t pos = 0; pos < cmdline->size();) {
      size_t end = cmdline->find('\0', pos);
      if (end == std::string::npos) end = cmdline->size();
      args.push_back(cmdline->substr(pos, end - pos));
      pos = end + 1;
    }
    static const char* kRankVariables[] = {
        "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "MASTER_ADDR=", "MASTER_PORT=", "LOCAL_WORLD_SIZE="};
    std::vector<std::string> base_env;
    for (char** e = environ; *e != nullptr; ++e) {
      bool rank_variable = false;
      for (const char* prefix : kRankVariables) {
        rank_variable |= std::strncmp(*e, prefix, std::strlen(prefix)) == 0;
      }
      if (!rank_variable) base_env.push_back(*e);
    }
    for (int rank = 1; rank < world_size; ++rank) {
      std::vector<std::string> env = base_env;
      env.push_back(absl::StrCat("RANK=", rank));
      env.push_back(absl::StrCat("LOCAL_RANK=", rank));
      env.push_back(absl::StrCat("WORLD_SIZE=", world_size));
      env.push_back(absl::StrCat("LOCAL_WORLD_SIZE=", world_size));
      env.push_back("MASTER_ADDR=127.0.0.1");
      env.push_back(absl::StrCat("MASTER_PORT=", port));
      std::vector<char*> argv, envp;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      for (std::string& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
      pid_t pid = 0;
      int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) {
        return absl::InternalError(
            absl::StrCat("could not start rank ", rank, ": ", std::strerror(rc)));
      }
      pids_.push_back({rank, pid});
    }
    return absl::OkStatus();
  }

  // Waits for every rank; "" when all exited with `expected`, else what went wrong.
  std::string Wait(int expected) {
    std::string failures;
    for (const auto& [rank, pid] : pids_) {
      int status = 0;
      if (waitpid(pid, &status, 0) != pid) continue;
      if (WIFEXITED(status) && WEXITSTATUS(status) == expected) continue;
      absl::StrAppend(&failures, failures.empty() ? "" : "; ", "rank ", rank, " ",
                      Describe(status));
    }
    pids_.clear();
    return failures;
  }

  // After a failure here: what the ranks that already ended report (a failed peer is the
  // usual cause of a failed collective); the ones still running are killed and reaped.
  std::string Stop() {
    std::string failures;
    for (const auto& [rank, pid] : pids_) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != kWorkerOk) {
          absl::StrAppend(&failures, failures.empty() ? "" : "; ", "rank ", rank, " ",
                          Describe(status));
        }
        continue;
      }
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    pids_.clear();
    return failures;
  }

 private:
  static std::string Describe(int status) {
    return absl::StrCat(WIFEXITED(status) ? absl::StrCat("exited with code ", WEXITSTATUS(status))
                                          : absl::StrCat("was killed by signal ", WTERMSIG(status)),
                        " (worker.log has its lines, prefixed \"rank N:\")");
  }

  std::vector<std::pair<int, pid_t>> pids_;
};

StatusOr<ModelOptions> WorkerModelOptions(const JobSpec& spec, int local_rank) {
  ModelOptions options;
  options.device = spec.gpus > 0 && at::hasCUDA() ? "cuda" : "cpu";
  if (options.device == "cuda" && spec.WorldSize() > 1) {
    options.device = absl::StrCat("cuda:", local_rank);
  }
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

Status Train(const JobSpec& spec, const std::string& fallback, Collective* collective,
             int local_rank, TrainingSink* sink, int64_t* step_reached) {
  const bool rank_zero = collective == nullptr || collective->rank() == 0;
  ASSIGN_OR_RETURN(ModelOptions model_options, WorkerModelOptions(spec, local_rank));
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
  std::unique_ptr<eval::GenerationEvaluator> generation;
  if (rank_zero) {
    ASSIGN_OR_RETURN(generation, MakeGenerationEval(spec, bundle, data.val, sink));
  }
  SampleSource train_source(std::move(data.train), &examples);
  SampleSource val_source(std::move(data.val), &examples);
  Trainer trainer(spec, bundle, &train_source, val_source.size() ? &val_source : nullptr, sink);
  trainer.set_eval_extension(generation.get());
  trainer.set_collective(collective);
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
  StatusOr<JobSpec> spec =
      text.ok() ? JobSpec::FromJson(*text, spec_path) : StatusOr<JobSpec>(text.status());
  StatusOr<DistributedOptions> dist = DistributedOptionsFromEnvironment();
  // Under an external launcher (torchrun, a training operator) the environment names the rank;
  // otherwise this process is rank 0 and starts the job's other ranks itself.
  const bool external = LaunchedExternally() && dist.ok();
  const int rank = external ? dist->rank : 0;
  PeerRankSink peer_sink(rank);
  WorkerSinks sinks;
  Status opened = rank == 0 ? OpenSinks(job_dir, &sinks) : absl::OkStatus();
  TrainingSink* sink = rank == 0 ? static_cast<TrainingSink*>(&sinks.fanout) : &peer_sink;
  if (!spec.ok() || !opened.ok() || !dist.ok()) {
    Status bad = !spec.ok() ? spec.status() : !opened.ok() ? opened : dist.status();
    sink->OnState("FAILED", std::string(bad.message()));
    return kWorkerFailed;
  }
  if (spec->output_dir.empty()) spec->output_dir = job_dir;
  const int world_size = external ? dist->world_size : spec->WorldSize();
  if (external && world_size != spec->WorldSize()) {
    sink->OnLogLine(absl::StrCat("WORLD_SIZE ", world_size, " from the launcher overrides the ",
                                 spec->WorldSize(), " rank(s) of job.json"));
  }
  PeerRanks peers;
  std::unique_ptr<Collective> collective;
  if (world_size > 1) {
    if (!external) {
      dist->world_size = world_size;
      dist->master_port = 0;  // any free port; the ranks started here are told which
    }
    if (spec->gpus > 0 && at::hasCUDA()) {
      dist->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(dist->local_rank));
    }
    std::function<Status(int)> start_peers;
    if (!external) start_peers = [&](int port) { return peers.Start(world_size, port); };
    StatusOr<std::unique_ptr<Collective>> joined = Collective::Connect(*dist, start_peers);
    if (!joined.ok()) {
      std::string peer_failures = peers.Stop();
      sink->OnState("FAILED", absl::StrCat(joined.status().message(),
                                           peer_failures.empty() ? "" : "; ", peer_failures));
      return kWorkerFailed;
    }
    collective = std::move(*joined);
    sink->OnLogLine(absl::StrCat("data-parallel: rank ", rank, " of ", world_size, " (store ",
                                 dist->master_addr, ":", collective->port(), ")"));
  }
  sink->OnState("RUNNING", "");
  int64_t step = 0;
  Status status;
  int code = kWorkerOk;
  try {
    status = Train(*spec, tokenizer_fallback, collective.get(), external ? dist->local_rank : 0,
                   sink, &step);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.find("out of memory") != std::string::npos) {
      sink->OnState("FAILED", OutOfMemoryMessage(*spec, step));
      peers.Stop();
      return kWorkerOutOfMemory;
    }
    status = absl::InternalError(absl::StrCat("training failed: ", what.substr(0, 400)));
  }
  if (absl::IsCancelled(status)) {
    code = kWorkerCancelled;
  } else if (!status.ok()) {
    std::string peer_failures = peers.Stop();
    sink->OnState("FAILED",
                  absl::StrCat(status.message(), peer_failures.empty() ? "" : "; ", peer_failures));
    return kWorkerFailed;
  }
  if (std::string failures = peers.Wait(code); !failures.empty()) {
    sink->OnState("FAILED", absl::StrCat("data-parallel ranks failed: ", failures));
    return kWorkerFailed;
  }
  if (code == kWorkerCancelled) {
    sink->OnState("CANCELLED", absl::StrCat("stopped at step ", step, "; checkpoints kept"));
    return kWorkerCancelled;
  }
  sink->OnState("SUCCEEDED", "");
  return kWorkerOk;
}

}  // namespace vlmd::api
