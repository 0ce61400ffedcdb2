#include "core/eval/served_generation.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace vlmd::eval {
namespace {

using Outcome = std::pair<size_t, StatusOr<GenerationResult>>;

// Finished requests, filled from the engine thread and drained by the caller.
class Completions {
 public:
  void Push(size_t index, const StatusOr<GenerationResult>& result) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.emplace_back(index, result);
    }
    cv_.notify_all();
  }
  Outcome Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !done_.empty(); });
    Outcome out = std::move(done_.front());
    done_.pop_front();
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Outcome> done_;
};

class CollectSink : public api::InferSink {
 public:
  CollectSink(size_t index, std::shared_ptr<Completions> completions)
      : index_(index), completions_(std::move(completions)) {}
  void OnChunk(const api::InferChunk&) override {}
  void OnDone(const StatusOr<GenerationResult>& result) override {
    completions_->Push(index_, result);
  }

 private:
  size_t index_;
  std::shared_ptr<Completions> completions_;
};

constexpr auto kRetryWait = std::chrono::milliseconds(50);
constexpr int kMaxRetries = 1200;  // a queue full for a minute with nothing of ours in it

class ServedRun {
 public:
  ServedRun(api::InferenceService* inference, const std::vector<EvalItem>& items,
            const ServedGenerationOptions& options, const ItemDone& on_done)
      : inference_(inference), items_(items), options_(options), on_done_(on_done) {}
  Status Run();

 private:
  StatusOr<api::InferRequest> MakeRequest(size_t index) const;
  // Submits while there is room; returns the status that ends the run (UNAVAILABLE).
  Status Fill();
  void Finish(size_t index, const StatusOr<GenerationResult>& result);
  void CancelAll();

  api::InferenceService* inference_;
  const std::vector<EvalItem>& items_;
  const ServedGenerationOptions& options_;
  const ItemDone& on_done_;
  std::shared_ptr<Completions> completions_ = std::make_shared<Completions>();
  std::map<size_t, std::shared_ptr<api::CancelHandle>> in_flight_;
  size_t next_ = 0;
  int retries_ = 0;
  bool stopped_ = false;
};

StatusOr<api::InferRequest> ServedRun::MakeRequest(size_t index) const {
  api::InferRequest r;
  r.request_id = absl::StrCat(options_.request_prefix, "-", index);
  r.model = options_.model;
  r.adapter = options_.adapter;
  r.sampling = options_.sampling;
  r.prompt = ToPromptInput(items_[index]);
  for (size_t i = 0; i < r.prompt.images.size(); ++i) {
    ImageSource& image = r.prompt.images[i];
    ASSIGN_OR_RETURN(image.bytes, LoadImageBytes(image, i, options_.images));
  }
  return r;
}

Status ServedRun::Fill() {
  const size_t limit = static_cast<size_t>(std::max(1, options_.concurrency));
  while (!stopped_ && next_ < items_.size() && in_flight_.size() < limit) {
    StatusOr<api::InferRequest> request = MakeRequest(next_);
    std::shared_ptr<api::CancelHandle> cancel;
    Status s = request.status();
    if (s.ok()) {
      s = inference_->Submit(std::move(*request),
                             std::make_shared<CollectSink>(next_, completions_), &cancel);
    }
    if (absl::IsUnavailable(s)) return s;
    if (absl::IsResourceExhausted(s) && retries_ < kMaxRetries) {
      if (!in_flight_.empty()) return absl::OkStatus();  // room comes with the next completion
      ++retries_;
      std::this_thread::sleep_for(kRetryWait);
      continue;
    }
    retries_ = 0;
    if (s.ok()) {
      in_flight_[next_++] = cancel;
    } else {
      Finish(next_++, s);
    }
  }
  return absl::OkStatus();
}

void ServedRun::Finish(size_t index, const StatusOr<GenerationResult>& result) {
  in_flight_.erase(index);
  if (stopped_) return;
  if (!on_done_(index, result)) {
    stopped_ = true;
    CancelAll();
  }
}

void ServedRun::CancelAll() {
  for (auto& [index, cancel] : in_flight_) {
    if (cancel) cancel->Cancel();
  }
}

Status ServedRun::Run() {
  Status ended;
  while (true) {
    if (ended.ok()) ended = Fill();
    if (!ended.ok() && !stopped_) {
      stopped_ = true;
      CancelAll();
    }
    if (in_flight_.empty() && (stopped_ || next_ >= items_.size())) break;
    if (in_flight_.empty()) continue;
    Outcome outcome = completions_->Pop();
    Finish(outcome.first, outcome.second);
  }
  if (!ended.ok()) return ended;
  return stopped_ ? absl::CancelledError("evaluation cancelled") : absl::OkStatus();
}

}  // namespace

Status GenerateServed(api::InferenceService* inference, const std::vector<EvalItem>& items,
                      const ServedGenerationOptions& options, const ItemDone& on_done) {
  ServedRun run(inference, items, options, on_done);
  return run.Run();
}

}  // namespace vlmd::eval
