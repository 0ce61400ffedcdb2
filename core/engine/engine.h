// Continuous batching for one model replica: requests wait in a bounded queue, join the
// running batch between steps while the KV budget allows, and leave when finished, cancelled
// or past their deadline. One scheduler thread owns the model's compute.
// Internal to core/ (torch).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/api/inference.h"
#include "core/engine/continuation.h"
#include "core/engine/graph_decoder.h"
#include "core/engine/model_bundle.h"
#include "core/engine/step.h"

namespace vlmd {

using Clock = std::chrono::steady_clock;

// A prepared request, owned jointly by the engine and the caller's cancel handle.
struct EngineRequest {
  std::string id;
  std::string adapter_name;
  std::shared_ptr<const LoraAdapter> adapter;  // keeps an unloaded adapter alive until done
  PreparedPrompt prompt;
  ImageBatch images;
  SamplingParams params;
  std::shared_ptr<api::InferSink> sink;
  std::optional<Clock::time_point> deadline;
  Clock::time_point submitted = Clock::now();
  std::atomic<bool> cancelled{false};

  // KV tokens this request reserves: prompt + max new tokens.
  int64_t reserved_tokens() const {
    return static_cast<int64_t>(prompt.ids.size()) + params.max_new_tokens;
  }
};

class Engine {
 public:
  Engine(std::string model_name, std::shared_ptr<const ModelBundle> bundle,
         const api::EngineLimits& limits, api::InferenceObserver* observer);
  ~Engine();

  // Queues a request. RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE when stopping,
  // INVALID_ARGUMENT when it could never fit the KV budget. Thread-safe.
  Status Enqueue(std::shared_ptr<EngineRequest> request);
  // Wakes the scheduler (after a cancellation). Thread-safe.
  void Wake();
  // See InferenceService::Shutdown. Thread-safe; idempotent.
  void Shutdown(std::chrono::milliseconds grace);
  api::EngineStats Stats() const;
  const ModelBundle& bundle() const { return *bundle_; }

 private:
  struct Running {
    std::shared_ptr<EngineRequest> request;
    std::unique_ptr<KvCache> cache;
    std::unique_ptr<Continuation> continuation;
    int64_t past = 0;
    int64_t rope_delta = 0;
    int32_t next_token = -1;  // -1 until prefilled
    std::optional<Clock::time_point> first_token;
  };

  void Loop();
  // Moves waiting requests into the batch while slots, budget and prefill allowance last.
  void Admit(std::unique_lock<std::mutex>& lock);
  // Fails requests that were cancelled or passed their deadline (waiting and running).
  void Reap(std::unique_lock<std::mutex>& lock);
  // One forward pass over the batch, sampling, callbacks and completion.
  void Step();
  // Removes running_[i]; with a slab, the last sequence moves into its slot.
  void Remove(size_t i);
  // All sequences decoding, none with an adapter: the slab/graph path applies.
  // Rows [0, n) that can decode through the CUDA graph: the leading rows that already have a
  // token and no adapter (newly admitted rows, which need a prefill, are always at the end).
  size_t GraphRows() const;
  std::vector<Continuation::Update> GraphStep(size_t rows);
  // Eager packed step over rows [begin, running_.size()): prefills and decodes mixed.
  std::vector<Continuation::Update> PackedStep(size_t begin, int64_t* prefill_tokens);
  void Complete(Running& r, const Status& status);
  void Fail(const std::shared_ptr<EngineRequest>& request, const Status& status);

  const std::string name_;
  const std::shared_ptr<const ModelBundle> bundle_;
  const api::EngineLimits limits_;
  api::InferenceObserver* const observer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<EngineRequest>> waiting_;  // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  bool cancel_all_ = false;                             // guarded by mu_
  int64_t kv_used_ = 0;                                 // guarded by mu_
  int64_t running_count_ = 0;                           // guarded by mu_
  int64_t last_batch_ = 0;                              // guarded by mu_
  int64_t steps_ = 0;                                   // guarded by mu_
  std::unique_ptr<GraphDecoder> slab_;                  // CUDA only: slab KV cache + decode graphs
  std::vector<Running> running_;  // scheduler thread only; running_[i] uses slab slot i
  std::thread thread_;
};

}  // namespace vlmd
