#include "core/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/model/torch_compat.h"
#include "core/train/checkpoint_io.h"

namespace vlmd {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const std::vector<std::string> kLlmLinears = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
const std::vector<std::string> kVisionLinears = {"qkv", "attn.proj",    "fc1",
                                                 "fc2", "merger.mlp.0", "merger.mlp.2"};

}  // namespace

std::vector<std::string> ExpandTargetModules(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const std::string& t : targets) {
    if (t == "DEFAULT" || t == "ALL" || t == "all-linear") {
      out.insert(out.end(), kLlmLinears.begin(), kLlmLinears.end());
      if (t == "ALL") out.insert(out.end(), kVisionLinears.begin(), kVisionLinears.end());
    } else {
      out.push_back(t);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

StatusOr<std::shared_ptr<LoraAdapter>> CreateTrainableAdapter(const JobSpec& spec,
                                                              const Qwen2VL& model, uint64_t seed) {
  std::shared_ptr<LoraAdapter> adapter;
  if (!spec.init_adapter.empty()) {
    ASSIGN_OR_RETURN(
        adapter, LoraAdapter::Load(spec.init_adapter, model.weights(), at::kFloat, model.device()));
  } else {
    adapter = std::make_shared<LoraAdapter>();
    LoraConfig& c = adapter->config;
    c.r = spec.lora_rank;
    c.lora_alpha = spec.lora_alpha;
    c.use_rslora = spec.use_rslora;
    c.target_modules = ExpandTargetModules(spec.target_modules);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (const auto& [name, linear] : LinearsByName(model.weights())) {
      if (name == "lm_head" || name == "visual.patch_embed.proj" || !c.Targets(name)) continue;
      const int64_t in = linear->weight.size(1), out = linear->weight.size(0);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform(a=√5)
      LoraModule m;
      m.a = at::empty({c.r, in}, at::kFloat).uniform_(-bound, bound, gen).to(model.device());
      m.b = at::zeros({out, c.r}, at::TensorOptions().dtype(at::kFloat).device(model.device()));
      m.scale = c.ScaleFor(name);
      adapter->modules[name] = std::move(m);
    }
    if (adapter->modules.empty()) {
      return absl::InvalidArgumentError("target_modules match no linear layer of the model");
    }
  }
  adapter->config.lora_dropout = spec.lora_dropout;
  adapter->config.base_model_name_or_path = spec.model;
  for (auto& [name, m] : adapter->modules) {
    m.a.requires_grad_(true);
    m.b.requires_grad_(true);
  }
  return adapter;
}

Trainer::Trainer(JobSpec spec, std::shared_ptr<const ModelBundle> bundle,
                 const ExampleSource* train, const ExampleSource* eval, TrainingSink* sink)
    : spec_(std::move(spec)), bundle_(std::move(bundle)), train_(train), eval_(eval), sink_(sink) {}

Status Trainer::Init() {
  if (train_->size() == 0) return absl::InvalidArgumentError("the training set is empty");
  const Qwen2VL& model = *bundle_->model;
  ASSIGN_OR_RETURN(adapter_,
                   CreateTrainableAdapter(spec_, model, static_cast<uint64_t>(spec_.seed)));
  for (auto& [name, m] : adapter_->modules) {
    params_.push_back(m.a);
    params_.push_back(m.b);
    step_options_.vision_trainable |= name.rfind("visual.", 0) == 0;
  }
  optimizer_ = std::make_unique<AdamW>(
      params_, AdamWOptions{spec_.learning_rate, spec_.adam_beta1, spec_.adam_beta2,
                            spec_.adam_epsilon, spec_.weight_decay});
  step_options_.lora_dropout = spec_.lora_dropout;
  step_options_.gradient_checkpointing = spec_.gradient_checkpointing;
  accumulation_ = spec_.EffectiveAccumulation(WorldSize());
  const size_t global_batch = static_cast<size_t>(spec_.batch_size) * WorldSize();
  batches_per_epoch_ = static_cast<int64_t>((train_->size() + global_batch - 1) / global_batch);
  if (!IsRankZero()) {
    // Dropout masks differ between ranks (rank 0 keeps the single-process stream).
    const uint64_t seed = static_cast<uint64_t>(spec_.seed) * 7919ULL + collective_->rank();
    compat::SeedDefaultGenerator(at::Device(at::kCPU), seed);
    if (model.device().is_cuda()) compat::SeedDefaultGenerator(model.device(), seed);
  }
  steps_per_epoch_ = (batches_per_epoch_ + accumulation_ - 1) / accumulation_;
  max_steps_ = spec_.max_steps > 0
                   ? spec_.max_steps
                   : static_cast<int64_t>(std::ceil(spec_.num_train_epochs * steps_per_epoch_));
  warmup_steps_ = WarmupSteps(spec_.warmup_ratio, max_steps_);
  if (!spec_.resume_from_checkpoint.empty()) return Restore(spec_.resume_from_checkpoint);
  return absl::OkStatus();
}

std::vector<size_t> Trainer::EpochOrder(int64_t epoch) const {
  std::vector<size_t> order(train_->size());
  std::iota(order.begin(), order.end(), 0);
  if (spec_.shuffle) {
    std::mt19937_64 rng(static_cast<uint64_t>(spec_.seed) * 1000003ULL +
                        static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

StatusOr<std::vector<std::vector<TrainExample>>> Trainer::NextGroup() {
  if (progress_.batch_in_epoch >= batches_per_epoch_) {
    ++progress_.epoch;
    progress_.batch_in_epoch = 0;
  }
  std::vector<size_t> order = EpochOrder(progress_.epoch);
  std::vector<std::vector<TrainExample>> group;
  const size_t batch = static_cast<size_t>(spec_.batch_size);
  const size_t rank = collective_ == nullptr ? 0 : static_cast<size_t>(collective_->rank());
  while (static_cast<int>(group.size()) < accumulation_ &&
         progress_.batch_in_epoch < batches_per_epoch_) {
    // This rank's slice of the global batch (empty when the epoch's last batch is short).
    size_t global_begin = static_cast<size_t>(progress_.batch_in_epoch) * batch * WorldSize();
    size_t begin = std::min(order.size(), global_begin + rank * batch);
    size_t end = std::min(order.size(), begin + batch);
    std::vector<TrainExample> batch;
    for (size_t i = begin; i < end; ++i) {
      ASSIGN_OR_RETURN(TrainExample ex, train_->Get(order[i]));
      batch.push_back(std::move(ex));
    }
    group.push_back(std::move(batch));
    ++progress_.batch_in_epoch;
  }
  return group;
}

Status Trainer::OptimizerStep(MicroBatchResult* total, double* grad_norm, double* lr) {
  ASSIGN_OR_RETURN(auto group, NextGroup());
  int64_t tokens = 0;
  for (const auto& batch : group) {
    for (const TrainExample& ex : batch) tokens += ex.LabelTokens();
  }
  if (collective_ != nullptr) {
    // The loss is the mean over the global batch's label tokens, as in one process.
    at::Tensor count = at::full({1}, static_cast<double>(tokens), at::kDouble);
    collective_->AllReduceSum(count);
    tokens = static_cast<int64_t>(count.item<double>());
  }
  StepOptions options = step_options_;
  options.loss_scale = tokens > 0 ? 1.0 / static_cast<double>(tokens) : 0.0;
  const Qwen2VL& model = *bundle_->model;
  MicroBatchResult sums;
  for (const auto& batch : group) {
    if (batch.empty()) continue;
    std::vector<const TrainExample*> ptrs;
    for (const TrainExample& ex : batch) ptrs.push_back(&ex);
    MicroBatchResult r = ForwardBackward(model, *adapter_, ptrs, options);
    sums.loss_sum += r.loss_sum;
    sums.tokens += r.tokens;
    sums.correct += r.correct;
  }
  if (collective_ != nullptr) ReduceAcrossRanks(&sums);
  total->loss_sum += sums.loss_sum;
  total->tokens += sums.tokens;
  total->correct += sums.correct;
  *grad_norm = ClipGradNorm(params_, spec_.max_grad_norm);
  *lr = spec_.learning_rate *
        LrMultiplier(spec_.lr_scheduler_type, progress_.global_step, max_steps_, warmup_steps_);
  optimizer_->Step(*lr);
  optimizer_->ZeroGrad();
  ++progress_.global_step;
  // What transformers logs: the schedule's value after this step.
  *lr = spec_.learning_rate *
        LrMultiplier(spec_.lr_scheduler_type, progress_.global_step, max_steps_, warmup_steps_);
  return absl::OkStatus();
}

bool Trainer::AgreeToStop(const std::atomic<bool>& stop) {
  if (collective_ == nullptr) return stop.load();
  at::Tensor flag = at::full({1}, stop.load() ? 1.0 : 0.0, at::kDouble);
  collective_->AllReduceSum(flag);
  return flag.item<double>() > 0;
}

void Trainer::ReduceAcrossRanks(MicroBatchResult* group) {
  std::vector<at::Tensor> grads;
  for (at::Tensor& p : params_) {
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);  // a rank with no samples
    grads.push_back(p.grad());
  }
  collective_->AllReduceSumPacked(grads);
  at::Tensor counts = at::tensor(
      {group->loss_sum, static_cast<double>(group->tokens), static_cast<double>(group->correct)},
      at::kDouble);
  collective_->AllReduceSum(counts);
  group->loss_sum = counts[0].item<double>();
  group->tokens = static_cast<int64_t>(counts[1].item<double>());
  group->correct = static_cast<int64_t>(counts[2].item<double>());
}

void Trainer::Log(const MicroBatchResult& window, int64_t window_steps, double grad_norm, double lr,
                  double window_seconds) {
  TrainLog log;
  log.step = progress_.global_step;
  log.max_steps = max_steps_;
  log.epoch = (static_cast<double>(progress_.epoch) +
               static_cast<double>(progress_.batch_in_epoch) / batches_per_epoch_);
  log.loss = window.tokens > 0 ? window.loss_sum / window.tokens : 0.0;
  log.acc = window.tokens > 0 ? static_cast<double>(window.correct) / window.tokens : 0.0;
  log.grad_norm = grad_norm;
  log.learning_rate = lr;
  log.memory_gib = DeviceMemoryGiB(bundle_->model->device());
  log.train_speed = window_seconds > 0 ? window_steps / window_seconds : 0.0;
  log.samples_per_second = log.train_speed * accumulation_ * spec_.batch_size * WorldSize();
  log.elapsed_s = NowSeconds() - start_seconds_;
  double per_step = log.elapsed_s / std::max<int64_t>(1, progress_.global_step);
  log.remaining_s = per_step * static_cast<double>(max_steps_ - progress_.global_step);
  sink_->OnTrainLog(log);
}

Status Trainer::Evaluate(std::map<std::string, double>* metrics) {
  ASSIGN_OR_RETURN(TeacherForcedResult tf, EvaluateTeacherForced(*bundle_->model, *adapter_, *eval_,
                                                                 spec_.eval_batch_size));
  EvalLog log;
  double runtime = tf.seconds;
  if (extension_ != nullptr) {
    const double start = NowSeconds();
    RETURN_IF_ERROR(extension_->Evaluate(*adapter_, progress_.global_step,
                                         progress_.global_step == max_steps_, &log.extra));
    runtime += NowSeconds() - start;  // as transformers: eval_runtime covers generation too
  }
  *metrics = log.extra;
  (*metrics)["loss"] = tf.loss;
  (*metrics)["acc"] = tf.acc;
  log.step = progress_.global_step;
  log.epoch = progress_.epoch + static_cast<double>(progress_.batch_in_epoch) / batches_per_epoch_;
  log.eval_loss = tf.loss;
  log.eval_acc = tf.acc;
  log.eval_runtime = runtime;
  log.eval_samples_per_second = runtime > 0 ? tf.samples / runtime : 0.0;
  log.eval_steps_per_second = runtime > 0 ? tf.batches / runtime : 0.0;
  sink_->OnEvalLog(log);
  return absl::OkStatus();
}

Status Trainer::SaveCheckpoint(const std::map<std::string, double>& eval_metrics) {
  std::string dir = absl::StrCat(spec_.output_dir, "/checkpoint-", progress_.global_step);
  auto it = eval_metrics.find(spec_.BestMetricName());
  bool best = false;
  if (it != eval_metrics.end()) {
    bool better = spec_.GreaterIsBetter() ? it->second > progress_.best_metric
                                          : it->second < progress_.best_metric;
    if (!progress_.has_best || better) {
      progress_.has_best = true;
      progress_.best_metric = it->second;
      progress_.best_checkpoint = dir;
      best = true;
    }
  }
  progress_.checkpoints.push_back(dir);
  TrainingState state{&spec_,     adapter_.get(), optimizer_.get(),
                      &progress_, max_steps_,     bundle_->preprocessor};
  RETURN_IF_ERROR(WriteTrainingCheckpoint(dir, state));
  RotateCheckpoints(spec_.save_total_limit, &progress_);
  CheckpointEvent event;
  event.step = progress_.global_step;
  event.path = dir;
  event.best = best;
  event.metrics = eval_metrics;
  sink_->OnCheckpoint(event);
  return absl::OkStatus();
}

Status Trainer::SaveCheckpointNow() {
  if (!IsRankZero()) return absl::OkStatus();
  std::string dir = absl::StrCat(spec_.output_dir, "/checkpoint-", progress_.global_step);
  if (progress_.global_step == 0 ||
      (!progress_.checkpoints.empty() && progress_.checkpoints.back() == dir)) {
    return absl::OkStatus();
  }
  return SaveCheckpoint({});
}

Status Trainer::Restore(const std::string& checkpoint_dir) {
  TrainingState state{&spec_,     adapter_.get(), optimizer_.get(),
                      &progress_, max_steps_,     bundle_->preprocessor};
  RETURN_IF_ERROR(ReadTrainingCheckpoint(checkpoint_dir, &state));
  sink_->OnLogLine(
      absl::StrCat("resumed from ", checkpoint_dir, " at step ", progress_.global_step));
  return absl::OkStatus();
}

Status Trainer::Run(const std::atomic<bool>& stop) {
  start_seconds_ = NowSeconds();
  MicroBatchResult window;
  int64_t window_steps = 0;
  double window_start = NowSeconds();
  while (progress_.global_step < max_steps_) {
    if (AgreeToStop(stop)) return absl::CancelledError("job cancelled");
    double grad_norm = 0, lr = 0;
    RETURN_IF_ERROR(OptimizerStep(&window, &grad_norm, &lr));
    ++window_steps;
    const int64_t step = progress_.global_step;
    const bool last = step == max_steps_;
    if (step % spec_.logging_steps == 0 || last) {
      Log(window, window_steps, grad_norm, lr, NowSeconds() - window_start);
      window = MicroBatchResult();
      window_steps = 0;
      window_start = NowSeconds();
    }
    std::map<std::string, double> metrics;
    if (!IsRankZero()) continue;  // the other ranks go on to the next step's collectives
    if (eval_ != nullptr && eval_->size() > 0 && (step % spec_.eval_steps == 0 || last)) {
      RETURN_IF_ERROR(Evaluate(&metrics));
    }
    if (step % spec_.save_steps == 0 || last) RETURN_IF_ERROR(SaveCheckpoint(metrics));
  }
  TrainSummary summary;
  summary.best_model_checkpoint = progress_.best_checkpoint;
  summary.best_metric = progress_.best_metric;
  summary.last_model_checkpoint = progress_.checkpoints.empty() ? "" : progress_.checkpoints.back();
  summary.train_time = NowSeconds() - start_seconds_;
  summary.memory = DeviceMemoryGiB(bundle_->model->device());
  sink_->OnFinish(summary);
  return absl::OkStatus();
}

}  // namespace vlmd
