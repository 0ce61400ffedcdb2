#include "core/engine/engine.h"

#include <c10/core/InferenceMode.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vlmd {
namespace {

double Ms(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// A status for a request that stopped early, or OK.
Status ExpiryStatus(const EngineRequest& r, Clock::time_point now) {
  if (r.cancelled.load()) return absl::CancelledError("request cancelled by the client");
  if (r.deadline && now >= *r.deadline) {
    return absl::DeadlineExceededError("request deadline passed");
  }
  return absl::OkStatus();
}

// The slab/graph decode path: on CUDA (VLMD_CUDA_GRAPHS=0 turns it off). Slots are the
// running batch; each slot holds the longest request the limits allow.
std::unique_ptr<GraphDecoder> MakeGraphDecoder(const std::shared_ptr<const ModelBundle>& bundle,
                                               const api::EngineLimits& limits) {
  const char* env = std::getenv("VLMD_CUDA_GRAPHS");
  if (!bundle->model->device().is_cuda() || (env != nullptr && std::string(env) == "0")) {
    return nullptr;
  }
  const int64_t capacity = limits.max_prompt_tokens + limits.max_new_tokens;
  return std::make_unique<GraphDecoder>(bundle->model, limits.max_running, capacity, true);
}

}  // namespace

Engine::Engine(std::string model_name, std::shared_ptr<const ModelBundle> bundle,
               const api::EngineLimits& limits, api::InferenceObserver* observer)
    : name_(std::move(model_name)),
      bundle_(std::move(bundle)),
      limits_(limits),
      observer_(observer),
      slab_(MakeGraphDecoder(bundle_, limits_)),
      thread_([this] { Loop(); }) {}

Engine::~Engine() { Shutdown(std::chrono::milliseconds(0)); }

Status Engine::Enqueue(std::shared_ptr<EngineRequest> request) {
  if (request->reserved_tokens() > limits_.kv_cache_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt (", request->prompt.ids.size(), " tokens) + max_new_tokens (",
                     request->params.max_new_tokens, ") exceeds the KV-cache budget of ",
                     limits_.kv_cache_tokens, " tokens"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("server is shutting down");
    if (static_cast<int>(waiting_.size()) >= limits_.max_waiting) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "queue full: ", waiting_.size(), " requests waiting for model ", name_, "; retry later"));
    }
    waiting_.push_back(std::move(request));
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void Engine::Wake() { cv_.notify_all(); }

void Engine::Shutdown(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  cv_.wait_for(lock, grace, [&] { return waiting_.empty() && running_count_ == 0; });
  cancel_all_ = true;
  cv_.notify_all();
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

api::EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  api::EngineStats s;
  s.model = name_;
  s.running = running_count_;
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.kv_tokens_used = kv_used_;
  s.kv_tokens_total = limits_.kv_cache_tokens;
  s.last_batch_size = last_batch_;
  s.steps = steps_;
  return s;
}

void Engine::Fail(const std::shared_ptr<EngineRequest>& request, const Status& status) {
  request->sink->OnDone(status);
  if (observer_) observer_->OnRequestDone(name_, request->adapter_name, status.code(), nullptr);
}

void Engine::Complete(Running& r, const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kv_used_ -= r.request->reserved_tokens();
    --running_count_;
  }
  cv_.notify_all();
  r.cache.reset();
  if (!status.ok()) {
    Fail(r.request, status);
    return;
  }
  GenerationResult& result = r.continuation->mutable_result();
  const EngineRequest& q = *r.request;
  Clock::time_point now = Clock::now();
  result.usage.prompt_tokens = static_cast<int64_t>(q.prompt.ids.size());
  result.usage.image_tokens = q.prompt.image_tokens;
  result.timings.total_ms = Ms(q.submitted, now);
  if (r.first_token) result.timings.ttft_ms = Ms(q.submitted, *r.first_token);
  q.sink->OnDone(result);
  if (observer_) observer_->OnRequestDone(name_, q.adapter_name, absl::StatusCode::kOk, &result);
}

void Engine::Reap(std::unique_lock<std::mutex>& lock) {
  Clock::time_point now = Clock::now();
  std::vector<std::pair<std::shared_ptr<EngineRequest>, Status>> failed;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    Status s = cancel_all_ ? absl::UnavailableError("server shut down before the request ran")
                           : ExpiryStatus(**it, now);
    if (s.ok()) {
      ++it;
    } else {
      failed.emplace_back(*it, s);
      it = waiting_.erase(it);
    }
  }
  lock.unlock();
  for (auto& [request, status] : failed) Fail(request, status);
  for (size_t i = 0; i < running_.size();) {
    Status s = cancel_all_ ? absl::UnavailableError("server shut down during generation")
                           : ExpiryStatus(*running_[i].request, now);
    if (s.ok()) {
      ++i;
      continue;
    }
    Complete(running_[i], s);
    Remove(i);
  }
  lock.lock();
}

void Engine::Admit(std::unique_lock<std::mutex>& lock) {
  int64_t prefill = 0;
  std::vector<std::shared_ptr<EngineRequest>> admitted;
  while (!waiting_.empty() &&
         static_cast<int>(running_.size() + admitted.size()) < limits_.max_running) {
    const auto& next = waiting_.front();
    int64_t prompt = static_cast<int64_t>(next->prompt.ids.size());
    if (kv_used_ + next->reserved_tokens() > limits_.kv_cache_tokens) break;
    if (!admitted.empty() && prefill + prompt > limits_.max_prefill_tokens) break;
    prefill += prompt;
    kv_used_ += next->reserved_tokens();
    ++running_count_;
    admitted.push_back(next);
    waiting_.pop_front();
  }
  if (admitted.empty()) return;
  lock.unlock();
  const Qwen2VL& model = *bundle_->model;
  for (auto& request : admitted) {
    Running r;
    r.request = request;
    r.cache =
        slab_
            ? std::make_unique<KvCache>(slab_->cache().Slot(static_cast<int64_t>(running_.size())))
            : std::make_unique<KvCache>(model.config().text, request->reserved_tokens(),
                                        model.dtype(), model.device());
    r.continuation =
        std::make_unique<Continuation>(request->params, request->prompt.ids, bundle_->tokenizer);
    r.continuation->mutable_result().timings.queue_ms = Ms(request->submitted, Clock::now());
    running_.push_back(std::move(r));
  }
  lock.lock();
}

void Engine::Loop() {
  c10::InferenceMode inference_mode;
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    Reap(lock);
    if (cancel_all_ && waiting_.empty() && running_.empty()) break;
    Admit(lock);
    if (running_.empty()) {
      if (stopping_ && waiting_.empty()) {
        if (cancel_all_) break;
        cv_.wait_for(lock, std::chrono::milliseconds(20));
        continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    lock.unlock();
    Step();
  }
}

void Engine::Remove(size_t i) {
  const size_t last = running_.size() - 1;
  if (slab_ && i != last) {
    // Keep the batch in slots [0, n): the last sequence moves into the freed slot.
    slab_->cache().MoveSlot(static_cast<int64_t>(last), static_cast<int64_t>(i),
                            running_[last].past);
    running_[last].cache = std::make_unique<KvCache>(slab_->cache().Slot(static_cast<int64_t>(i)));
  }
  if (i != last) running_[i] = std::move(running_[last]);
  running_.pop_back();
}

size_t Engine::GraphRows() const {
  if (!slab_) return 0;
  size_t rows = 0;
  while (rows < running_.size() && running_[rows].next_token >= 0 &&
         running_[rows].request->adapter == nullptr) {
    ++rows;
  }
  return rows;
}

std::vector<Continuation::Update> Engine::GraphStep(size_t rows) {
  std::vector<int32_t> tokens;
  std::vector<int64_t> positions, lengths;
  for (size_t i = 0; i < rows; ++i) {
    const Running& r = running_[i];
    tokens.push_back(r.next_token);
    positions.push_back(r.past + r.rope_delta);
    lengths.push_back(r.past);
  }
  GraphDecoder::Result out = slab_->Step(tokens, positions, lengths);
  std::vector<Continuation::Update> updates(rows);
  std::vector<Continuation*> sampled;
  std::vector<int64_t> sampled_rows;
  for (size_t i = 0; i < rows; ++i) {
    Running& r = running_[i];
    r.past += 1;
    const int64_t row = static_cast<int64_t>(i);
    if (r.continuation->ArgmaxSuffices()) {
      updates[i] = r.continuation->Accept(static_cast<int32_t>(out.argmax[row].item<int64_t>()));
    } else {
      sampled.push_back(r.continuation.get());
      sampled_rows.push_back(row);
    }
  }
  if (!sampled.empty()) {
    at::Tensor index = at::tensor(sampled_rows, at::kLong).to(out.logits.device());
    std::vector<Continuation::Update> drawn =
        Continuation::StepAll(sampled, out.logits.index_select(0, index));
    for (size_t k = 0; k < drawn.size(); ++k) {
      updates[static_cast<size_t>(sampled_rows[k])] = std::move(drawn[k]);
    }
  }
  return updates;
}

std::vector<Continuation::Update> Engine::PackedStep(size_t begin, int64_t* prefill_tokens) {
  const Qwen2VL& model = *bundle_->model;
  std::vector<StepSequence> seqs;
  for (size_t i = begin; i < running_.size(); ++i) {
    Running& r = running_[i];
    StepSequence s;
    if (r.next_token < 0) {
      s = PrefillSequence(model, r.request->prompt.ids, &r.request->images, &r.rope_delta);
      *prefill_tokens += static_cast<int64_t>(s.ids.size());
    } else {
      s = DecodeSequence(r.next_token, r.past, r.rope_delta);
    }
    s.cache = r.cache.get();
    s.adapter = r.request->adapter.get();
    seqs.push_back(std::move(s));
  }
  at::Tensor hidden = RunStep(model, seqs);
  // Logits stay on the model's device: the sampler draws there.
  at::Tensor logits =
      model.Logits(hidden.index_select(0, LastRows(seqs, model.device()))).to(at::kFloat);
  std::vector<Continuation*> continuations;
  for (size_t i = 0; i < seqs.size(); ++i) {
    running_[begin + i].past += static_cast<int64_t>(seqs[i].ids.size());
    continuations.push_back(running_[begin + i].continuation.get());
  }
  return Continuation::StepAll(continuations, logits);
}

void Engine::Step() {
  Clock::time_point start = Clock::now();
  int64_t prefill_tokens = 0;
  std::vector<Status> outcome(running_.size());
  try {
    // Decoding rows go through the CUDA graph even while new rows prefill: a prefill then costs
    // the running batch one eager pass over the new prompts only, not an eager decode step.
    const size_t graph_rows = GraphRows();
    std::vector<Continuation::Update> updates =
        graph_rows > 0 ? GraphStep(graph_rows) : std::vector<Continuation::Update>{};
    if (graph_rows < running_.size()) {
      std::vector<Continuation::Update> rest = PackedStep(graph_rows, &prefill_tokens);
      updates.insert(updates.end(), rest.begin(), rest.end());
    }
    Clock::time_point now = Clock::now();
    for (size_t i = 0; i < running_.size(); ++i) {
      Running& r = running_[i];
      const Continuation::Update& u = updates[i];
      r.next_token = u.token;
      if (!r.first_token) r.first_token = now;
      api::InferChunk chunk{u.text, {u.token}, {}};
      if (r.request->params.logprobs) chunk.logprobs.push_back(u.logprob);
      r.request->sink->OnChunk(chunk);
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    VLMD_LOG(Error) << "engine step failed for model " << name_ << ": " << what.substr(0, 500);
    Status s = what.find("out of memory") != std::string::npos
                   ? absl::ResourceExhaustedError("device out of memory during generation")
                   : absl::InternalError(absl::StrCat("generation failed: ", what.substr(0, 200)));
    for (Status& o : outcome) o = s;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_batch_ = static_cast<int64_t>(running_.size());
    ++steps_;
  }
  if (observer_)
    observer_->OnStep(name_, static_cast<int>(running_.size()), prefill_tokens, seconds);
  for (size_t i = running_.size(); i-- > 0;) {
    if (!outcome[i].ok() || running_[i].continuation->finished()) {
      Complete(running_[i], outcome[i]);
      Remove(i);
    }
  }
  cv_.notify_all();
}

}  // namespace vlmd
