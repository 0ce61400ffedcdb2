// Prometheus metrics of the fine-tuning side (names prefixed vlmd_, listed in docs/serving.md):
// jobs by state, the queue, each running job's progress (label `job`, the job's name; series
// of jobs that stopped running are removed, so the label set stays small), GPUs in use by
// role, and counters of merges and evaluations. Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/base/status.h"

namespace vlmd::server {

class JobMetrics {
 public:
  // Registers the families in `registry`, which must outlive this object.
  explicit JobMetrics(prometheus::Registry& registry);

  // Counts one finished MergeLora call (vlmd_merges_total{code}).
  void RecordMerge(absl::StatusCode code);
  // Counts one finished Evaluate call and the samples it scored.
  void RecordEvaluation(absl::StatusCode code, int64_t samples);

  // Sets the gauges from the job service's counts (null: the server runs no jobs) and the
  // served models (their devices are the GPUs inference uses).
  void Apply(const api::JobStats* jobs, const std::vector<api::ModelInfo>& models);

 private:
  void ApplyRunning(const std::vector<api::JobStatus>& running);

  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& queue_;
  prometheus::Family<prometheus::Gauge>& step_;
  prometheus::Family<prometheus::Gauge>& max_steps_;
  prometheus::Family<prometheus::Gauge>& loss_;
  prometheus::Family<prometheus::Gauge>& eval_loss_;
  prometheus::Family<prometheus::Gauge>& learning_rate_;
  prometheus::Family<prometheus::Gauge>& samples_per_second_;
  prometheus::Family<prometheus::Gauge>& gpus_in_use_;
  prometheus::Family<prometheus::Counter>& merges_;
  prometheus::Family<prometheus::Counter>& evaluations_;
  prometheus::Family<prometheus::Counter>& evaluation_samples_;

  std::mutex mu_;
  std::set<std::string> exported_;  // `job` label values with series now; guarded by mu_
};

// The CUDA device ids the served models run on ("cuda" = 0, "cuda:N" = N).
std::set<int> InferenceGpus(const std::vector<api::ModelInfo>& models);

}  // namespace vlmd::server
