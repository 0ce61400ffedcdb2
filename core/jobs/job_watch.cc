// JobManager::WatchJob: each watch has a thread that replays the job's events from the store
// (the single source of truth, so history and live events never overlap or miss) and then
// waits for more until the job is terminal or the watch is stopped. Callbacks run on that
// thread with no lock held.
#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "core/jobs/job_manager.h"

namespace vlmd::jobs {
namespace {

constexpr int kBatch = 256;

}  // namespace

// Calls the watcher's callback; an exception from it ends the watch instead of the process.
bool JobManager::Deliver(WatchState& state, const api::JobEvent& event) {
  try {
    return state.on_event(event);
  } catch (...) {
    VLMD_LOG(Error) << "watch of job " << state.id << ": the callback threw; watch ended";
    return false;
  }
}

// Calls the watcher's end callback, keeping exceptions inside the watch thread.
void JobManager::EndOfWatch(WatchState& state) {
  try {
    state.on_end();
  } catch (...) {
    VLMD_LOG(Error) << "watch of job " << state.id << ": the end callback threw";
  }
}

class JobManager::WatchImpl : public api::JobService::Watch {
 public:
  WatchImpl(std::shared_ptr<EventBus> bus, std::shared_ptr<WatchState> state)
      : bus_(std::move(bus)), state_(std::move(state)) {}
  void Start(JobManager* manager) {
    thread_ = std::thread([manager, state = state_] { manager->WatchLoop(state); });
  }
  // Stops the watch and waits for its thread, unless called from inside the callback (then
  // the thread ends by itself when the callback returns).
  ~WatchImpl() override {
    state_->stop = true;
    {
      std::lock_guard<std::mutex> lock(bus_->mu);
      bus_->cv.notify_all();
    }
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  std::shared_ptr<EventBus> bus_;
  std::shared_ptr<WatchState> state_;
  std::thread thread_;
};

StatusOr<std::unique_ptr<api::JobService::Watch>> JobManager::WatchJob(
    const std::string& id, int64_t from_seq, std::function<bool(const api::JobEvent&)> on_event,
    std::function<void()> on_end) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (FindLocked(id) == nullptr) {
      return absl::NotFoundError(absl::StrCat("no job with id \"", id, "\""));
    }
    if (shut_down_ || stopping_) return absl::UnavailableError("job service is shutting down");
  }
  auto state = std::make_shared<WatchState>();
  state->id = id;
  state->last_seq = std::max<int64_t>(0, from_seq);
  state->on_event = std::move(on_event);
  state->on_end = std::move(on_end);
  {
    std::lock_guard<std::mutex> lock(bus_->mu);
    bus_->watches.insert(state);
  }
  auto watch = std::make_unique<WatchImpl>(bus_, state);
  watch->Start(this);
  return std::unique_ptr<api::JobService::Watch>(std::move(watch));
}

void JobManager::WatchLoop(const std::shared_ptr<WatchState>& state) {
  std::shared_ptr<EventBus> bus = bus_;  // outlives the manager if the handle was detached
  bool finished = false;                 // the job ended and every event was delivered
  while (!state->stop) {
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(bus->mu);
      generation = bus->generation;
    }
    api::JobStatus base;
    bool terminal;
    {
      // The store holds every event of a job before its in-memory state changes (both are
      // written under mu_), so "terminal" read here means no event can follow.
      std::lock_guard<std::mutex> lock(mu_);
      base = FindLocked(state->id)->record.status;
      terminal = api::IsTerminal(base.state);
    }
    StatusOr<std::vector<api::JobEvent>> events =
        store_->EventsAfter(base, state->last_seq, kBatch);
    if (!events.ok()) {
      VLMD_LOG(Error) << "watch of job " << state->id << ": " << events.status().message();
      break;
    }
    for (const api::JobEvent& event : *events) {
      if (state->stop) break;
      state->last_seq = event.seq;
      if (!Deliver(*state, event)) state->stop = true;
    }
    if (state->stop || static_cast<int>(events->size()) == kBatch) continue;
    if (terminal) {
      finished = true;
      break;
    }
    std::unique_lock<std::mutex> lock(bus->mu);
    bus->cv.wait_for(lock, std::chrono::seconds(1),
                     [&] { return state->stop || bus->generation != generation; });
  }
  if (finished && !state->stop && state->on_end) EndOfWatch(*state);
  std::lock_guard<std::mutex> lock(bus->mu);
  state->running = false;
  bus->watches.erase(state);
  bus->cv.notify_all();
}

void JobManager::NotifyWatchers() {
  std::lock_guard<std::mutex> lock(bus_->mu);
  ++bus_->generation;
  bus_->cv.notify_all();
}

void JobManager::StopWatches() {
  std::unique_lock<std::mutex> lock(bus_->mu);
  for (const auto& state : bus_->watches) state->stop = true;
  bus_->cv.notify_all();
  bus_->cv.wait(lock, [&] { return bus_->watches.empty(); });
}

}  // namespace vlmd::jobs
