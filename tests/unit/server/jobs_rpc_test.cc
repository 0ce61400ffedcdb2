// Unit test of vlmd.v1.Jobs in the gRPC layer alone: the real JobsRpcService, its stream
// reactors, auth and LongOps on loopback, in front of scripted job and evaluation services.
// tests/e2e runs them with the real job service and worker.
#include "server/jobs_rpc.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/listeners.h"

namespace vlmd::server {
namespace {

// A watch that delivers events from its own thread until stopped.
class ScriptedWatch final : public api::JobService::Watch {
 public:
  ScriptedWatch(std::function<void(const std::atomic<bool>&)> body, std::atomic<int>* stopped)
      : stopped_(stopped) {
    thread_ = std::thread([this, body = std::move(body)] { body(stop_); });
  }
  ~ScriptedWatch() override {
    stop_ = true;
    thread_.join();
    ++*stopped_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int>* stopped_;
  std::thread thread_;
};

// Jobs "sft-1" (finished, 5 events) and "hold" (one event, then nothing until stopped).
class ScriptedJobs final : public api::JobService {
 public:
  StatusOr<api::JobStatus> StartSftJob(JobSpec spec) override {
    RETURN_IF_ERROR(spec.Validate());
    started = spec;
    return MakeStatus("sft-1", api::JobState::kValidating);
  }
  StatusOr<api::JobStatus> GetJob(const std::string& id) const override {
    if (id != "sft-1" && id != "hold") return absl::NotFoundError("no job with id \"" + id + "\"");
    return MakeStatus(id, api::JobState::kSucceeded);
  }
  std::vector<api::JobStatus> ListJobs(std::optional<api::JobState> state) const override {
    listed_state = state;
    return {MakeStatus("sft-1", api::JobState::kSucceeded)};
  }
  StatusOr<api::JobStatus> CancelJob(const std::string& id) override {
    return absl::FailedPreconditionError("job " + id + " already finished (SUCCEEDED)");
  }
  StatusOr<std::unique_ptr<Watch>> WatchJob(const std::string& id, int64_t from_seq,
                                            std::function<bool(const api::JobEvent&)> on_event,
                                            std::function<void()> on_end) override {
    RETURN_IF_ERROR(GetJob(id).status());
    const bool hold = id == "hold";
    return std::unique_ptr<Watch>(new ScriptedWatch(
        [=](const std::atomic<bool>& stop) {
          for (int64_t seq = from_seq + 1; seq <= (hold ? from_seq + 1 : 5) && !stop; ++seq) {
            api::JobEvent e;
            e.seq = seq;
            e.message = "event " + std::to_string(seq);
            if (!on_event(e)) return;
          }
          if (!hold) return on_end();
          while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        },
        &watches_stopped));
  }
  StatusOr<api::MergeResult> MergeLora(const api::MergeRequest& request) override {
    std::unique_lock<std::mutex> lock(mu);
    ++merging;
    cv.notify_all();
    cv.wait(lock, [&] { return release_merges; });
    return api::MergeResult{request.output_dir, 3, 2, 100, 0.5};
  }
  api::JobStats Stats() const override { return {}; }
  void Shutdown(bool) override {}

  static api::JobStatus MakeStatus(const std::string& id, api::JobState state) {
    api::JobStatus s;
    s.id = id;
    s.name = id;
    s.state = state;
    return s;
  }

  JobSpec started;
  mutable std::optional<api::JobState> listed_state;
  std::atomic<int> watches_stopped{0};
  std::mutex mu;
  std::condition_variable cv;
  int merging = 0;             // guarded by mu
  bool release_merges = true;  // guarded by mu
};

// Three samples, then a summary; the data set "endless" goes on until progress says stop.
class ScriptedEval final : public api::EvalService {
 public:
  StatusOr<api::EvalSummary> Evaluate(const api::EvalRequest& request,
                                      const api::EvalProgress& progress) override {
    const bool endless = !request.datasets.empty() && request.datasets[0] == "endless";
    for (int64_t i = 1; endless || i <= 3; ++i) {
      api::EvalSampleResult sample;
      sample.source = "data.jsonl:" + std::to_string(i);
      if (!progress(i, endless ? 1000 : 3, &sample)) {
        ++cancelled;
        return absl::CancelledError("evaluation cancelled");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(endless ? 5 : 0));
    }
    api::EvalSummary summary;
    summary.samples = 3;
    summary.exact_match = 0.5;
    summary.eval_loss = 1.25;
    summary.results_path = "/out/results.jsonl";
    return summary;
  }
  std::atomic<int> cancelled{0};
};

constexpr char kAdminToken[] = "admin-token-0123456789";
constexpr char kInferToken[] = "infer-token-0123456789";

class JobsRpcTest : public ::testing::Test {
 protected:
  void Start(int long_ops = 2, bool with_jobs = true) {
    auth_ = std::make_unique<Authenticator>(std::vector<TokenEntry>{
        {"admin", kAdminToken, Role::kAdmin}, {"infer", kInferToken, Role::kInfer}});
    env_ = ServiceEnv{auth_.get(), &metrics_, &state_, &pool_, 0};
    ops_ = std::make_unique<LongOps>(long_ops);
    rpc_ = std::make_unique<JobsRpcService>(env_, ops_.get());
    ServeConfig config;
    config.listen = "127.0.0.1:0";
    StatusOr<GrpcListener> l = StartGrpcServer(config, {rpc_.get()}, {"vlmd.v1.Jobs"});
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
    state_.SetJobServices(with_jobs ? &jobs_ : nullptr, &eval_);
    stub_ = v1::Jobs::NewStub(
        grpc::CreateChannel(listener_.address, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    {
      std::lock_guard<std::mutex> lock(jobs_.mu);
      jobs_.release_merges = true;
      jobs_.cv.notify_all();
    }
    if (listener_.server) {
      listener_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
    pool_.Stop();
    if (ops_) ops_->Stop();
  }
  static void Prepare(grpc::ClientContext* ctx, const std::string& token = kAdminToken) {
    ctx->AddMetadata("authorization", std::string("Bearer ") + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }
  grpc::Status Watch(const std::string& id, int64_t from, std::vector<int64_t>* seqs,
                     const std::string& token = kAdminToken) {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::WatchJobRequest request;
    request.set_job_id(id);
    request.set_from_seq(from);
    auto reader = stub_->WatchJob(&ctx, request);
    v1::JobEvent event;
    while (reader->Read(&event)) seqs->push_back(event.seq());
    return reader->Finish();
  }

  ScriptedJobs jobs_;
  ScriptedEval eval_;
  ServerMetrics metrics_{"test"};
  ServingState state_;
  ThreadPool pool_{2};
  std::unique_ptr<Authenticator> auth_;
  ServiceEnv env_;
  std::unique_ptr<LongOps> ops_;
  std::unique_ptr<JobsRpcService> rpc_;
  GrpcListener listener_;
  std::unique_ptr<v1::Jobs::Stub> stub_;
};

TEST_F(JobsRpcTest, StartSftJobKeepsDefaultsAndMapsErrors) {
  Start();
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::StartSftJobRequest request;
  request.mutable_spec()->set_model("/m");
  request.mutable_spec()->add_dataset("/d.jsonl");
  request.mutable_spec()->set_lora_rank(16);
  v1::StartSftJobResponse response;
  grpc::Status s = stub_->StartSftJob(&ctx, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.job().state(), v1::JOB_STATE_VALIDATING);
  EXPECT_EQ(jobs_.started.lora_rank, 16);
  EXPECT_EQ(jobs_.started.learning_rate, 1e-4);
  grpc::ClientContext bad_ctx;
  Prepare(&bad_ctx);
  request.mutable_spec()->set_learning_rate(2);
  s = stub_->StartSftJob(&bad_ctx, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("learning_rate"), std::string::npos) << s.error_message();
  grpc::ClientContext empty_ctx;
  Prepare(&empty_ctx);
  s = stub_->StartSftJob(&empty_ctx, v1::StartSftJobRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(JobsRpcTest, UnaryCallsAndTheirCodes) {
  Start();
  auto get = [&](const std::string& id) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::GetJobStatusRequest r;
    r.set_job_id(id);
    v1::GetJobStatusResponse out;
    return stub_->GetJobStatus(&ctx, r, &out);
  };
  EXPECT_TRUE(get("sft-1").ok());
  EXPECT_EQ(get("nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(get("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext list_ctx;
  Prepare(&list_ctx);
  v1::ListJobsRequest list;
  list.set_state(v1::JOB_STATE_RUNNING);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub_->ListJobs(&list_ctx, list, &jobs).ok());
  EXPECT_EQ(jobs_.listed_state, api::JobState::kRunning);
  EXPECT_EQ(jobs.jobs_size(), 1);
  grpc::ClientContext cancel_ctx;
  Prepare(&cancel_ctx);
  v1::CancelJobRequest cancel;
  cancel.set_job_id("sft-1");
  v1::CancelJobResponse cancelled;
  EXPECT_EQ(stub_->CancelJob(&cancel_ctx, cancel, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(JobsRpcTest, EveryMethodNeedsTheAdminRole) {
  Start();
  grpc::ClientContext ctx;
  Prepare(&ctx, kInferToken);
  v1::ListJobsResponse jobs;
  grpc::Status s = stub_->ListJobs(&ctx, v1::ListJobsRequest(), &jobs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::vector<int64_t> seqs;
  EXPECT_EQ(Watch("sft-1", 0, &seqs, kInferToken).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(seqs.empty());
  grpc::ClientContext eval_ctx;
  Prepare(&eval_ctx, "wrong-token-0123456789");
  auto reader = stub_->Evaluate(&eval_ctx, v1::EvaluateRequest());
  v1::EvaluateResponse message;
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(JobsRpcTest, WithoutAStateDirJobCallsAreRefused) {
  Start(2, /*with_jobs=*/false);
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ListJobsResponse jobs;
  grpc::Status s = stub_->ListJobs(&ctx, v1::ListJobsRequest(), &jobs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("state_dir"), std::string::npos);
  state_.StartDraining();
  grpc::ClientContext drain_ctx;
  Prepare(&drain_ctx);
  EXPECT_EQ(stub_->ListJobs(&drain_ctx, v1::ListJobsRequest(), &jobs).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(JobsRpcTest, WatchResumesFromASeqAndEndsWithTheJob) {
  Start();
  std::vector<int64_t> seqs;
  grpc::Status s = Watch("sft-1", 2, &seqs);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(seqs, (std::vector<int64_t>{3, 4, 5}));
  seqs.clear();
  EXPECT_TRUE(Watch("sft-1", 5, &seqs).ok());  // past the end: ends at once
  EXPECT_TRUE(seqs.empty());
  EXPECT_EQ(Watch("nope", 0, &seqs).error_code(), grpc::StatusCode::NOT_FOUND);
  for (int i = 0; i < 100 && jobs_.watches_stopped < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(jobs_.watches_stopped, 2);  // both watches were released
}

TEST_F(JobsRpcTest, AClientThatCancelsStopsItsWatch) {
  Start();
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::WatchJobRequest request;
  request.set_job_id("hold");
  auto reader = stub_->WatchJob(&ctx, request);
  v1::JobEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.seq(), 1);
  ctx.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 200 && jobs_.watches_stopped == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(jobs_.watches_stopped, 1);
}

TEST_F(JobsRpcTest, EvaluateStreamsProgressThenTheSummary) {
  Start();
  grpc::ClientContext ctx;
  Prepare(&ctx);
  auto reader = stub_->Evaluate(&ctx, v1::EvaluateRequest());
  v1::EvaluateResponse message;
  int progress = 0, summaries = 0;
  while (reader->Read(&message)) {
    progress += message.has_progress();
    if (message.has_summary()) {
      ++summaries;
      EXPECT_EQ(message.summary().eval_loss(), 1.25);
      EXPECT_EQ(message.summary().results_path(), "/out/results.jsonl");
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(progress, 3);
  EXPECT_EQ(summaries, 1);
  EXPECT_NE(metrics_.RenderText().find("vlmd_evaluations_total{code=\"OK\"} 1"), std::string::npos);
}

TEST_F(JobsRpcTest, AClientThatCancelsStopsItsEvaluation) {
  Start();
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::EvaluateRequest request;
  request.add_dataset("endless");
  auto reader = stub_->Evaluate(&ctx, request);
  v1::EvaluateResponse message;
  ASSERT_TRUE(reader->Read(&message));
  ctx.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 200 && eval_.cancelled == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(eval_.cancelled, 1);
}

TEST_F(JobsRpcTest, MergesRunOnLongOpsUpToTheLimit) {
  Start(/*long_ops=*/1);
  {
    std::lock_guard<std::mutex> lock(jobs_.mu);
    jobs_.release_merges = false;
  }
  v1::MergeLoraRequest request;
  request.set_job_id("sft-1");
  request.set_output_dir("/out");
  grpc::Status first;
  v1::MergeLoraResponse first_out;
  std::thread slow([&] {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    first = stub_->MergeLora(&ctx, request, &first_out);
  });
  {
    std::unique_lock<std::mutex> lock(jobs_.mu);
    jobs_.cv.wait(lock, [&] { return jobs_.merging == 1; });
  }
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::MergeLoraResponse out;
  grpc::Status second = stub_->MergeLora(&ctx, request, &out);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  {
    std::lock_guard<std::mutex> lock(jobs_.mu);
    jobs_.release_merges = true;
    jobs_.cv.notify_all();
  }
  slow.join();
  ASSERT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(first_out.output_dir(), "/out");
  EXPECT_EQ(first_out.merged_modules(), 2);
  std::string text = metrics_.RenderText();
  EXPECT_NE(text.find("vlmd_merges_total{code=\"OK\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("vlmd_merges_total{code=\"RESOURCE_EXHAUSTED\"} 1"), std::string::npos);
  grpc::ClientContext no_adapter_ctx;
  Prepare(&no_adapter_ctx);
  request.clear_job_id();
  EXPECT_EQ(stub_->MergeLora(&no_adapter_ctx, request, &out).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace vlmd::server
