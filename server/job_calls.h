// The long-running calls of vlmd.v1.Jobs: WatchJob (a job's events, streamed from the job
// service's watch thread) and Evaluate (run on a long-operations thread, progress streamed),
// plus LongOps, the bounded thread pool that merges and evaluations run on (so they never
// hold the request pool that inference calls need).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "server/queued_writer.h"
#include "server/rpc_util.h"
#include "server/thread_pool.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmd::server {

// At most `limit` long operations (merges, evaluations) at once, each on a thread of its own
// pool. Thread-safe.
class LongOps {
 public:
  explicit LongOps(int limit) : limit_(limit), pool_(limit) {}
  // Runs `task` on the pool, or RESOURCE_EXHAUSTED (naming `what`) when `limit` run already.
  Status TryPost(const std::string& what, std::function<void()> task);
  // Waits for the running operations and joins the threads. Idempotent.
  void Stop() { pool_.Stop(); }

 private:
  const int limit_;
  std::atomic<int> running_{0};
  ThreadPool pool_;
};

// WatchJob: replays the job's events after from_seq, then streams live ones, and finishes OK
// after the event that ends the job. Owns itself until gRPC's OnDone.
class WatchJobCall final : public QueuedWriter<v1::JobEvent> {
 public:
  static grpc::ServerWriteReactor<v1::JobEvent>* Start(const ServiceEnv& env,
                                                       grpc::CallbackServerContext* ctx,
                                                       const v1::WatchJobRequest* request);
  explicit WatchJobCall(const ServiceEnv& env);
  void OnDone() override;

 private:
  // Opens the job service's watch; the status when the job is unknown.
  Status Open(const v1::WatchJobRequest& request);

  std::shared_ptr<WatchJobCall> self_;  // released in OnDone
  std::mutex mu_;
  std::unique_ptr<api::JobService::Watch> watch_;  // guarded by mu_
  bool done_ = false;                              // OnDone ran; guarded by mu_
};

// Evaluate: runs EvalService::Evaluate on a LongOps thread, streams a progress message per
// finished sample and then the summary. A client that goes away (or a draining server)
// cancels the evaluation. Owns itself until both OnDone and the evaluation have finished.
class EvaluateCall final : public QueuedWriter<v1::EvaluateResponse> {
 public:
  static grpc::ServerWriteReactor<v1::EvaluateResponse>* Start(const ServiceEnv& env, LongOps* ops,
                                                               grpc::CallbackServerContext* ctx,
                                                               const v1::EvaluateRequest* request);
  EvaluateCall(const ServiceEnv& env, const v1::EvaluateRequest& request);
  void OnDone() override;

 private:
  // On the LongOps thread: the evaluation, then the summary or the error.
  void Run();
  bool OnProgress(int64_t done, int64_t total, const api::EvalSampleResult* sample);

  const v1::EvaluateRequest request_;   // a copy: the evaluation may outlive the call
  std::shared_ptr<EvaluateCall> self_;  // released in OnDone
};

}  // namespace vlmd::server
