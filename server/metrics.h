// Prometheus metrics of vlmd (names prefixed vlmd_, conventions of vLLM/TGI; the list is in
// docs/serving.md). Fed by the gRPC layer (RecordRpc), by the engine through
// api::InferenceObserver, and by polling InferenceService::Stats() on each scrape.
#pragma once

#include <grpcpp/support/status.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api/inference.h"
#include "server/job_metrics.h"

namespace vlmd::server {

// Bucket boundaries (seconds), as vLLM's.
const std::vector<double>& LatencyBuckets();  // request duration and queue time
const std::vector<double>& TimeToFirstTokenBuckets();
const std::vector<double>& TimePerOutputTokenBuckets();

// What the gauges show, read from the inference service at scrape time.
struct MetricsSnapshot {
  std::vector<api::EngineStats> engines;
  std::vector<api::ModelInfo> models;
  std::vector<api::AdapterInfo> adapters;
  std::optional<api::JobStats> jobs;  // unset when the server runs no jobs
};

// All of vlmd's metrics in one registry. Thread-safe: every method may be called from any
// thread (gRPC callbacks, the engine thread, the HTTP server's threads).
class ServerMetrics final : public api::InferenceObserver {
 public:
  // `version` goes into vlmd_build_info.
  explicit ServerMetrics(const std::string& version);

  // Counts one finished RPC (vlmd_requests_total{method,code}); `method` is the short name
  // ("Infer").
  void RecordRpc(std::string_view method, grpc::StatusCode code);

  // api::InferenceObserver: token counters and latency histograms per model.
  void OnRequestDone(const std::string& model, const std::string& adapter, absl::StatusCode code,
                     const GenerationResult* result) override;
  void OnStep(const std::string& model, int batch, int64_t prefill_tokens, double seconds) override;

  // Sets the function polled before each scrape for the gauges (nullopt = nothing yet).
  void SetSnapshotSource(std::function<std::optional<MetricsSnapshot>()> source);

  // What the /metrics endpoint collects: refreshes the gauges, then collects the registry.
  std::shared_ptr<prometheus::Collectable> collectable() { return collectable_; }

  // Metrics of jobs, merges and evaluations.
  JobMetrics& jobs() { return job_metrics_; }

  // The text exposition format of everything (refreshing first); for tests and debugging.
  std::string RenderText();

 private:
  class RefreshingCollectable;
  void Refresh();
  void ApplySnapshot(const MetricsSnapshot& snapshot);

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& queue_;
  prometheus::Family<prometheus::Histogram>& ttft_;
  prometheus::Family<prometheus::Histogram>& tpot_;
  prometheus::Family<prometheus::Counter>& prompt_tokens_;
  prometheus::Family<prometheus::Counter>& image_tokens_;
  prometheus::Family<prometheus::Counter>& generation_tokens_;
  prometheus::Family<prometheus::Counter>& steps_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& waiting_;
  prometheus::Family<prometheus::Gauge>& batch_size_;
  prometheus::Family<prometheus::Gauge>& kv_usage_;
  prometheus::Family<prometheus::Gauge>& adapters_loaded_;
  prometheus::Family<prometheus::Gauge>& model_load_seconds_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  JobMetrics job_metrics_;

  std::mutex source_mu_;
  std::function<std::optional<MetricsSnapshot>()> source_;  // guarded by source_mu_
};

}  // namespace vlmd::server
