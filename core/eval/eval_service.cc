// EvalService (core/api/eval.h): resolves the model, adapter and data, generates through the
// inference service, scores, writes results.jsonl and summary.json, and runs the trainer's
// teacher-forced pass on the same model and adapter.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/api/eval.h"
#include "core/api/inference_internal.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/engine/model_bundle.h"
#include "core/eval/eval_data.h"
#include "core/eval/eval_items.h"
#include "core/eval/eval_target.h"
#include "core/eval/results_file.h"
#include "core/eval/served_generation.h"
#include "core/train/evaluate.h"
#include "core/train/job_samples.h"

namespace vlmd::eval {
namespace {

using api::EvalProgress;
using api::EvalRequest;
using api::EvalSummary;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Status CheckRequest(const EvalRequest& r) {
  if (r.concurrency < 1 || r.concurrency > 1024) {
    return absl::InvalidArgumentError("concurrency must be in [1, 1024]");
  }
  if (r.max_samples < 0) return absl::InvalidArgumentError("max_samples must be >= 0");
  if (r.datasets.empty() && r.job_id.empty()) {
    return absl::InvalidArgumentError("name data sets, or a job whose validation split to use");
  }
  return absl::OkStatus();
}

// What the model and adapter need for tokenizing samples and the teacher-forced pass.
struct ModelSide {
  std::shared_ptr<const ModelBundle> bundle;
  std::shared_ptr<const LoraAdapter> adapter;  // an adapter without modules = the base model
  ExampleOptions examples;
};

StatusOr<ModelSide> LoadModelSide(api::InferenceService& inference, const EvalTarget& target) {
  ModelSide side;
  side.bundle = api::ServedBundle(inference, target.model.name);
  if (side.bundle == nullptr) {  // not the built-in service: load the checkpoint here
    ASSIGN_OR_RETURN(side.bundle, ModelBundle::Load(target.model.path, ModelOptions(), ""));
  }
  if (side.bundle->tokenizer == nullptr) {
    return absl::FailedPreconditionError("the model has no tokenizer.json");
  }
  const Qwen2VL& model = *side.bundle->model;
  if (target.adapter) side.adapter = api::ServedAdapter(inference, target.adapter->name);
  if (target.adapter && side.adapter == nullptr) {
    ASSIGN_OR_RETURN(side.adapter, LoraAdapter::Load(target.adapter->path, model.weights(),
                                                     at::kFloat, model.device()));
  }
  if (side.adapter == nullptr) side.adapter = std::make_shared<LoraAdapter>();
  // The pixel limits generation uses: the job's, else those stored with the adapter.
  std::optional<int64_t> min_pixels, max_pixels;
  if (target.job_spec) {
    min_pixels = target.job_spec->min_pixels;
    max_pixels = target.job_spec->max_pixels;
  } else if (target.adapter) {
    min_pixels = target.adapter->min_pixels;
    max_pixels = target.adapter->max_pixels;
  }
  ASSIGN_OR_RETURN(side.examples,
                   MakeExampleOptions(model.config(), side.bundle->preprocessor,
                                      side.bundle->tokenizer, min_pixels, max_pixels));
  return side;
}

SamplingRequest GreedyUnlessSet(SamplingRequest sampling) {
  if (!sampling.temperature) sampling.temperature = 0.0;
  return sampling;
}

// Scores, writes and reports each finished sample (on the Evaluate thread). Stops the run
// when the first requests were all refused: that is a problem of the request (e.g.
// max_new_tokens over the server's limit, an adapter unloaded meanwhile), not of samples.
class SampleRecorder {
 public:
  static constexpr int64_t kFailFast = 8;

  SampleRecorder(const std::vector<EvalItem>& items, OrderedResultsFile* file,
                 const EvalProgress& progress, EvalSummary* summary)
      : items_(items), file_(file), progress_(progress), summary_(summary) {}

  bool Record(size_t index, const StatusOr<GenerationResult>& g) {
    api::EvalSampleResult r = ScoreSample(items_[index], g.ok() ? g->text : "");
    r.finish_reason = g.ok() ? FinishReasonName(g->finish_reason) : "error";
    r.completion_tokens = g.ok() ? g->usage.completion_tokens : 0;
    if (!g.ok()) r.error = g.status().ToString();
    summary_->failed += g.ok() ? 0 : 1;
    summary_->completion_tokens += r.completion_tokens;
    scores_.Add(r);
    file_->Put(index, ResultLine(r));
    const int64_t done = scores_.count(), total = static_cast<int64_t>(items_.size());
    if (!g.ok() && summary_->failed == done && done == std::min(kFailFast, total)) {
      refused_ = Status(
          g.status().code(),
          absl::StrCat("the first ", done, " requests were refused: ", g.status().message()));
      return false;
    }
    return !progress_ || progress_(done, total, &r);
  }
  void Fill(EvalSummary* summary) const { scores_.Fill(summary); }
  const Status& refused() const { return refused_; }

 private:
  const std::vector<EvalItem>& items_;
  OrderedResultsFile* file_;
  const EvalProgress& progress_;
  EvalSummary* summary_;
  ScoreAccumulator scores_;
  Status refused_;
};

// summary.json, with what was evaluated.
Status WriteSummary(const std::string& dir, const std::string& id, const EvalRequest& request,
                    const EvalTarget& target, const EvalSummary& summary) {
  std::map<std::string, std::string> extra = {
      {"id", id},
      {"model", target.model.name},
      {"adapter", target.adapter && !target.temporary ? target.adapter->name : ""},
      {"job_id", request.job_id},
      {"checkpoint", target.checkpoint_dir}};
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "summary.json"), SummaryJson(summary, extra)));
  VLMD_LOG(Info) << "evaluation " << id << ": " << summary.samples << " samples, exact_match "
                 << summary.exact_match << ", bleu " << summary.bleu << " -> " << dir;
  return absl::OkStatus();
}

class EvalServiceImpl : public api::EvalService {
 public:
  EvalServiceImpl(api::InferenceService* inference, api::JobService* jobs,
                  std::vector<std::string> roots, std::string state_dir)
      : inference_(inference),
        jobs_(jobs),
        roots_(std::move(roots)),
        state_dir_(std::move(state_dir)) {}

  StatusOr<EvalSummary> Evaluate(const EvalRequest& request, const EvalProgress& progress) override;

 private:
  std::string NextId();
  StatusOr<std::vector<Sample>> Samples(const EvalRequest& request, const EvalTarget& target,
                                        const ModelSide& side) const;
  Status Generate(const EvalRequest& request, const EvalTarget& target, const std::string& id,
                  const std::vector<EvalItem>& items, OrderedResultsFile* file,
                  const EvalProgress& progress, EvalSummary* summary) const;
  Status TeacherForced(const EvalRequest& request, const EvalTarget& target, const ModelSide& side,
                       std::vector<Sample> samples, const EvalProgress& progress,
                       EvalSummary* summary) const;

  api::InferenceService* const inference_;
  api::JobService* const jobs_;
  const std::vector<std::string> roots_;
  const std::string state_dir_;
  std::atomic<uint64_t> counter_{0};
};

std::string EvalServiceImpl::NextId() {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  return absl::StrCat("eval-", stamp, "-", getpid(), "-", ++counter_);
}

StatusOr<std::vector<Sample>> EvalServiceImpl::Samples(const EvalRequest& request,
                                                       const EvalTarget& target,
                                                       const ModelSide& side) const {
  const std::string data_root = DataRootFromEnvironment();
  std::vector<Sample> samples;
  if (!request.datasets.empty()) {
    ASSIGN_OR_RETURN(samples, ReadEvalDatasets(request.datasets, roots_, data_root));
  } else {
    ASSIGN_OR_RETURN(samples, JobValidationSamples(*target.job_spec, side.examples, data_root));
  }
  Truncate(request.max_samples, &samples);
  return samples;
}

Status EvalServiceImpl::Generate(const EvalRequest& request, const EvalTarget& target,
                                 const std::string& id, const std::vector<EvalItem>& items,
                                 OrderedResultsFile* file, const EvalProgress& progress,
                                 EvalSummary* summary) const {
  ServedGenerationOptions options;
  options.model = target.model.name;
  options.adapter = target.adapter ? target.adapter->name : "";
  options.sampling = GreedyUnlessSet(request.sampling);
  options.concurrency = request.concurrency;
  options.request_prefix = id;
  SampleRecorder recorder(items, file, progress, summary);
  auto on_done = [&](size_t i, const StatusOr<GenerationResult>& g) {
    return recorder.Record(i, g);
  };
  Status status = GenerateServed(inference_, items, options, on_done);
  if (!recorder.refused().ok()) return recorder.refused();
  RETURN_IF_ERROR(status);
  recorder.Fill(summary);
  return file->Close();
}

Status EvalServiceImpl::TeacherForced(const EvalRequest& request, const EvalTarget& target,
                                      const ModelSide& side, std::vector<Sample> samples,
                                      const EvalProgress& progress, EvalSummary* summary) const {
  const int64_t total = static_cast<int64_t>(samples.size());
  // The job's eval_batch_size reproduces its eval_loss; SWIFT's default of 1 otherwise.
  const int batch_size = target.job_spec ? target.job_spec->eval_batch_size : 1;
  SampleSource source(std::move(samples), &side.examples);
  auto keep_going = [&] { return !progress || progress(total, total, nullptr); };
  ASSIGN_OR_RETURN(TeacherForcedResult tf, EvaluateTeacherForced(*side.bundle->model, *side.adapter,
                                                                 source, batch_size, keep_going));
  summary->eval_loss = tf.loss;
  summary->eval_acc = tf.acc;
  return absl::OkStatus();
}

StatusOr<EvalSummary> EvalServiceImpl::Evaluate(const EvalRequest& request,
                                                const EvalProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(CheckRequest(request));
  const std::string id = NextId();
  ASSIGN_OR_RETURN(EvalTarget target, ResolveTarget(request, inference_, jobs_, id));
  ASSIGN_OR_RETURN(ModelSide side, LoadModelSide(*inference_, target));
  // Parameter ranges fail here, once, rather than in every request.
  RETURN_IF_ERROR(ResolveSampling(GreedyUnlessSet(request.sampling), side.bundle->generation,
                                  std::numeric_limits<int>::max())
                      .status());
  ASSIGN_OR_RETURN(std::vector<Sample> samples, Samples(request, target, side));
  ASSIGN_OR_RETURN(std::vector<EvalItem> items, MakeEvalItems(samples));
  ASSIGN_OR_RETURN(std::string dir,
                   MakeOutputDir(request.output_dir, roots_, target.job ? target.job->job_dir : "",
                                 state_dir_, id));
  EvalSummary summary;
  summary.results_path = JoinPath(dir, "results.jsonl");
  ASSIGN_OR_RETURN(auto file, OrderedResultsFile::Create(summary.results_path));
  const auto generation_start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(Generate(request, target, id, items, file.get(), progress, &summary));
  const double generation_seconds = SecondsSince(generation_start);
  if (generation_seconds > 0) {
    summary.samples_per_second = static_cast<double>(summary.samples) / generation_seconds;
    summary.tokens_per_second = static_cast<double>(summary.completion_tokens) / generation_seconds;
  }
  if (request.teacher_forced) {
    RETURN_IF_ERROR(TeacherForced(request, target, side, std::move(samples), progress, &summary));
  }
  summary.seconds = SecondsSince(start);
  RETURN_IF_ERROR(WriteSummary(dir, id, request, target, summary));
  return summary;
}

}  // namespace
}  // namespace vlmd::eval

namespace vlmd::api {

std::unique_ptr<EvalService> EvalService::Create(InferenceService* inference, JobService* jobs,
                                                 std::vector<std::string> allowed_roots,
                                                 std::string state_dir) {
  return std::make_unique<eval::EvalServiceImpl>(inference, jobs, std::move(allowed_roots),
                                                 std::move(state_dir));
}

}  // namespace vlmd::api
