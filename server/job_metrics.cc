#include "server/job_metrics.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "server/status_map.h"

namespace vlmd::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Counter>& Counter(prometheus::Registry& r, const char* name,
                                                 const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r);
}

// The gRPC code name of a status code, through the one status mapping.
std::string CodeLabel(absl::StatusCode code) {
  return GrpcCodeName(ToGrpcStatus(absl::Status(code, "")).error_code());
}

double Metric(const std::map<std::string, double>& metrics, const char* name) {
  auto it = metrics.find(name);
  return it == metrics.end() ? 0.0 : it->second;
}

}  // namespace

std::set<int> InferenceGpus(const std::vector<api::ModelInfo>& models) {
  std::set<int> gpus;
  for (const api::ModelInfo& m : models) {
    if (m.device == "cuda") gpus.insert(0);
    if (m.device.rfind("cuda:", 0) == 0) gpus.insert(std::atoi(m.device.c_str() + 5));
  }
  return gpus;
}

JobMetrics::JobMetrics(prometheus::Registry& r)
    : jobs_(Gauge(r, "vlmd_jobs", "Fine-tuning jobs by state")),
      queue_(Gauge(r, "vlmd_job_queue_length", "Jobs waiting for GPUs or a CPU slot")),
      step_(Gauge(r, "vlmd_job_step", "Optimizer steps done by a running job")),
      max_steps_(Gauge(r, "vlmd_job_max_steps", "Optimizer steps a running job will run")),
      loss_(Gauge(r, "vlmd_job_loss", "Latest training loss of a running job")),
      eval_loss_(Gauge(r, "vlmd_job_eval_loss", "Latest eval loss of a running job")),
      learning_rate_(Gauge(r, "vlmd_job_learning_rate", "Learning rate of a running job")),
      samples_per_second_(
          Gauge(r, "vlmd_job_samples_per_second", "Training throughput of a running job")),
      gpus_in_use_(Gauge(r, "vlmd_gpus_in_use", "GPUs in use, by role (training, inference)")),
      merges_(Counter(r, "vlmd_merges_total", "MergeLora calls finished, by gRPC status code")),
      evaluations_(
          Counter(r, "vlmd_evaluations_total", "Evaluate calls finished, by gRPC status code")),
      evaluation_samples_(Counter(r, "vlmd_evaluation_samples_total",
                                  "Samples scored by successful evaluations")) {}

void JobMetrics::RecordMerge(absl::StatusCode code) {
  merges_.Add({{"code", CodeLabel(code)}}).Increment();
}

void JobMetrics::RecordEvaluation(absl::StatusCode code, int64_t samples) {
  evaluations_.Add({{"code", CodeLabel(code)}}).Increment();
  evaluation_samples_.Add({}).Increment(static_cast<double>(samples));
}

void JobMetrics::Apply(const api::JobStats* jobs, const std::vector<api::ModelInfo>& models) {
  gpus_in_use_.Add({{"role", "inference"}}).Set(static_cast<double>(InferenceGpus(models).size()));
  if (jobs == nullptr) return;
  gpus_in_use_.Add({{"role", "training"}}).Set(static_cast<double>(jobs->training_gpus_busy));
  for (const auto& [state, n] : jobs->jobs_by_state) {
    jobs_.Add({{"state", absl::AsciiStrToLower(state)}}).Set(static_cast<double>(n));
  }
  queue_.Add({}).Set(static_cast<double>(jobs->queue_length));
  ApplyRunning(jobs->running);
}

void JobMetrics::ApplyRunning(const std::vector<api::JobStatus>& running) {
  std::lock_guard<std::mutex> lock(mu_);
  prometheus::Family<prometheus::Gauge>* per_job[] = {
      &step_, &max_steps_, &loss_, &eval_loss_, &learning_rate_, &samples_per_second_};
  std::set<std::string> now;
  for (const api::JobStatus& s : running) {
    const prometheus::Labels labels = {{"job", s.name}};
    now.insert(s.name);
    step_.Add(labels).Set(static_cast<double>(s.step));
    max_steps_.Add(labels).Set(static_cast<double>(s.max_steps));
    loss_.Add(labels).Set(Metric(s.train_metrics, "loss"));
    eval_loss_.Add(labels).Set(Metric(s.eval_metrics, "eval_loss"));
    learning_rate_.Add(labels).Set(Metric(s.train_metrics, "learning_rate"));
    samples_per_second_.Add(labels).Set(s.samples_per_second);
  }
  for (const std::string& name : exported_) {
    if (now.count(name)) continue;
    for (auto* family : per_job) family->Remove(&family->Add({{"job", name}}));
  }
  exported_ = std::move(now);
}

}  // namespace vlmd::server
