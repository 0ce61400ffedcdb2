// Prometheus metrics: names, labels, values, and the HTTP endpoint (including a taken port).
#include "server/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "server/listeners.h"
#include "tests/common/http_client.h"

namespace vlmd::server {
namespace {

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

GenerationResult Result() {
  GenerationResult g;
  g.token_ids = {1, 2, 3, 4, 5};
  g.finish_reason = FinishReason::kLength;
  g.usage = {40, 16, 5};
  g.timings = {100.0, 300.0, 700.0};  // ms
  return g;
}

TEST(Metrics, RpcCountsByMethodAndCode) {
  ServerMetrics m("1.2.3");
  m.RecordRpc("Infer", grpc::StatusCode::OK);
  m.RecordRpc("Infer", grpc::StatusCode::OK);
  m.RecordRpc("Infer", grpc::StatusCode::INVALID_ARGUMENT);
  std::string text = m.RenderText();
  EXPECT_TRUE(Has(text, "vlmd_requests_total{code=\"OK\",method=\"Infer\"} 2")) << text;
  EXPECT_TRUE(Has(text, "vlmd_requests_total{code=\"INVALID_ARGUMENT\",method=\"Infer\"} 1"));
  EXPECT_TRUE(Has(text, "vlmd_build_info{grpc_version=")) << text;
  EXPECT_TRUE(Has(text, "version=\"1.2.3\"} 1")) << text;
}

TEST(Metrics, ObserverFeedsTokensAndLatencies) {
  ServerMetrics m("x");
  GenerationResult g = Result();
  m.OnRequestDone("tiny", "", absl::StatusCode::kOk, &g);
  m.OnRequestDone("tiny", "", absl::StatusCode::kCancelled, nullptr);  // no output: no tokens
  m.OnStep("tiny", 3, 40, 0.01);
  std::string text = m.RenderText();
  EXPECT_TRUE(Has(text, "vlmd_prompt_tokens_total{model=\"tiny\"} 40")) << text;
  EXPECT_TRUE(Has(text, "vlmd_image_tokens_total{model=\"tiny\"} 16"));
  EXPECT_TRUE(Has(text, "vlmd_generation_tokens_total{model=\"tiny\"} 5"));
  EXPECT_TRUE(Has(text, "vlmd_request_success_total{finish_reason=\"length\",model=\"tiny\"} 1"));
  EXPECT_TRUE(Has(text, "vlmd_request_duration_seconds_sum{model=\"tiny\"} 0.7"));
  EXPECT_TRUE(Has(text, "vlmd_request_duration_seconds_bucket{model=\"tiny\",le=\"0.8\"} 1"));
  EXPECT_TRUE(Has(text, "vlmd_request_duration_seconds_bucket{model=\"tiny\",le=\"0.5\"} 0"));
  EXPECT_TRUE(Has(text, "vlmd_request_queue_seconds_sum{model=\"tiny\"} 0.1"));
  EXPECT_TRUE(Has(text, "vlmd_time_to_first_token_seconds_sum{model=\"tiny\"} 0.3"));
  EXPECT_TRUE(Has(text, "vlmd_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"0.001\"} 0"));
  // (700 - 300) ms over 4 tokens after the first.
  EXPECT_TRUE(Has(text, "vlmd_time_per_output_token_seconds_sum{model=\"tiny\"} 0.1"));
  EXPECT_TRUE(Has(text, "vlmd_engine_steps_total{model=\"tiny\"} 1"));
  EXPECT_TRUE(Has(text, "vlmd_batch_size{model=\"tiny\"} 3"));
}

TEST(Metrics, GaugesComeFromTheSnapshotAtScrapeTime) {
  ServerMetrics m("x");
  int calls = 0;
  m.SetSnapshotSource([&calls]() -> std::optional<MetricsSnapshot> {
    ++calls;
    MetricsSnapshot s;
    api::EngineStats e;
    e.model = "tiny";
    e.running = 2;
    e.waiting = 5;
    e.kv_tokens_used = 250;
    e.kv_tokens_total = 1000;
    s.engines.push_back(e);
    api::ModelInfo info;
    info.name = "tiny";
    info.load_seconds = 1.5;
    s.models.push_back(info);
    s.models.push_back(api::ModelInfo{"other"});
    api::AdapterInfo a;
    a.model = "tiny";
    s.adapters = {a, a};
    return s;
  });
  std::string text = m.RenderText();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(Has(text, "vlmd_requests_running{model=\"tiny\"} 2")) << text;
  EXPECT_TRUE(Has(text, "vlmd_requests_waiting{model=\"tiny\"} 5"));
  EXPECT_TRUE(Has(text, "vlmd_kv_cache_usage_ratio{model=\"tiny\"} 0.25"));
  EXPECT_TRUE(Has(text, "vlmd_model_load_seconds{model=\"tiny\"} 1.5"));
  EXPECT_TRUE(Has(text, "vlmd_adapters_loaded{model=\"tiny\"} 2"));
  EXPECT_TRUE(Has(text, "vlmd_adapters_loaded{model=\"other\"} 0"));
  m.SetSnapshotSource(nullptr);
  m.RenderText();
  EXPECT_EQ(calls, 1);
}

TEST(MetricsListener, ServesMetricsOverHttp) {
  ServerMetrics m("x");
  m.RecordRpc("ListModels", grpc::StatusCode::OK);
  MetricsListener l = StartMetricsListener("127.0.0.1:0", m.collectable());
  ASSERT_NE(l.server, nullptr);
  ASSERT_FALSE(l.address.empty());
  int port = std::stoi(l.address.substr(l.address.rfind(':') + 1));
  EXPECT_GT(port, 0);
  vlmd::testing::HttpResponse r = vlmd::testing::HttpGet(port, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Has(r.body, "vlmd_requests_total{code=\"OK\",method=\"ListModels\"} 1")) << r.body;
}

TEST(MetricsListener, TakenPortIsLoggedNotFatal) {
  int port = 0;
  int fd = vlmd::testing::OccupyPort(&port);
  ASSERT_GE(fd, 0);
  ServerMetrics m("x");
  MetricsListener l = StartMetricsListener("127.0.0.1:" + std::to_string(port), m.collectable());
  EXPECT_EQ(l.server, nullptr);
  EXPECT_TRUE(l.address.empty());
  close(fd);
  MetricsListener off = StartMetricsListener("", m.collectable());
  EXPECT_EQ(off.server, nullptr);
  MetricsListener bad = StartMetricsListener("127.0.0.1:http", m.collectable());
  EXPECT_EQ(bad.server, nullptr);
}

TEST(MetricsListener, OnlyGetAndHeadOfMetrics) {
  ServerMetrics m("x");
  m.RecordRpc("Infer", grpc::StatusCode::OK);
  MetricsListener l = StartMetricsListener("127.0.0.1:0", m.collectable());
  ASSERT_NE(l.server, nullptr);
  const int port = l.server->port();
  EXPECT_EQ(vlmd::testing::HttpGet(port, "/").status, 404);
  EXPECT_EQ(vlmd::testing::HttpGet(port, "/metricsx").status, 404);
  vlmd::testing::HttpResponse query = vlmd::testing::HttpGet(port, "/metrics?name=x");
  EXPECT_EQ(query.status, 200);
  EXPECT_TRUE(Has(query.body, "method=\"Infer\"")) << query.body;
  vlmd::testing::HttpResponse post =
      vlmd::testing::HttpSend(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  vlmd::testing::HttpResponse head =
      vlmd::testing::HttpSend(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  // Headers without end: refused once past 8 KiB, and the endpoint still answers.
  vlmd::testing::HttpResponse huge =
      vlmd::testing::HttpSend(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a'));
  EXPECT_EQ(huge.status, 431);
  EXPECT_EQ(vlmd::testing::HttpGet(port, "/metrics").status, 200);
}

TEST(MetricsListener, BarePortListensOnEveryInterface) {
  ServerMetrics m("x");
  MetricsListener l = StartMetricsListener("0", m.collectable());
  ASSERT_NE(l.server, nullptr);
  EXPECT_EQ(l.address, "0.0.0.0:" + std::to_string(l.server->port()));
  EXPECT_EQ(vlmd::testing::HttpGet(l.server->port(), "/metrics").status, 200);
}

TEST(Listeners, WithPort) {
  EXPECT_EQ(WithPort("127.0.0.1:0", 4242), "127.0.0.1:4242");
  EXPECT_EQ(WithPort("[::]:0", 4242), "[::]:4242");
  EXPECT_EQ(WithPort("localhost", 1), "localhost:1");
}

TEST(JobMetrics, JobsQueueRunningJobsAndGpus) {
  ServerMetrics m("x");
  MetricsSnapshot snapshot;
  snapshot.models = {api::ModelInfo{"a", "/a", "cuda:1"}, api::ModelInfo{"b", "/b", "cuda:1"},
                     api::ModelInfo{"c", "/c", "cpu"}};
  api::JobStats jobs;
  jobs.jobs_by_state = {{"RUNNING", 1}, {"QUEUED", 2}, {"SUCCEEDED", 0}};
  jobs.queue_length = 2;
  jobs.training_gpus_busy = 2;
  api::JobStatus running;
  running.name = "latex";
  running.step = 7;
  running.max_steps = 20;
  running.train_metrics = {{"loss", 1.5}, {"learning_rate", 0.0001}};
  running.eval_metrics = {{"eval_loss", 1.25}};
  running.samples_per_second = 3.5;
  jobs.running = {running};
  snapshot.jobs = jobs;
  m.SetSnapshotSource([&] { return std::optional<MetricsSnapshot>(snapshot); });
  std::string text = m.RenderText();
  EXPECT_TRUE(Has(text, "vlmd_jobs{state=\"running\"} 1")) << text;
  EXPECT_TRUE(Has(text, "vlmd_jobs{state=\"queued\"} 2")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_queue_length 2")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_step{job=\"latex\"} 7")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_max_steps{job=\"latex\"} 20")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_loss{job=\"latex\"} 1.5")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_eval_loss{job=\"latex\"} 1.25")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_learning_rate{job=\"latex\"} 0.0001")) << text;
  EXPECT_TRUE(Has(text, "vlmd_job_samples_per_second{job=\"latex\"} 3.5")) << text;
  EXPECT_TRUE(Has(text, "vlmd_gpus_in_use{role=\"training\"} 2")) << text;
  EXPECT_TRUE(Has(text, "vlmd_gpus_in_use{role=\"inference\"} 1")) << text;
  // A job that stops running leaves no series behind.
  snapshot.jobs->running.clear();
  text = m.RenderText();
  EXPECT_FALSE(Has(text, "job=\"latex\"")) << text;
}

TEST(JobMetrics, MergesAndEvaluationsByCode) {
  ServerMetrics m("x");
  m.jobs().RecordMerge(absl::StatusCode::kOk);
  m.jobs().RecordMerge(absl::StatusCode::kAlreadyExists);
  m.jobs().RecordEvaluation(absl::StatusCode::kOk, 40);
  m.jobs().RecordEvaluation(absl::StatusCode::kCancelled, 0);
  std::string text = m.RenderText();
  EXPECT_TRUE(Has(text, "vlmd_merges_total{code=\"OK\"} 1")) << text;
  EXPECT_TRUE(Has(text, "vlmd_merges_total{code=\"ALREADY_EXISTS\"} 1")) << text;
  EXPECT_TRUE(Has(text, "vlmd_evaluations_total{code=\"CANCELLED\"} 1")) << text;
  EXPECT_TRUE(Has(text, "vlmd_evaluation_samples_total 40")) << text;
}

}  // namespace
}  // namespace vlmd::server
