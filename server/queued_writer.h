// A server-streaming reactor fed from a thread of our own (a job watch, an evaluation): that
// thread queues messages with Push, which blocks while kMaxPending are unwritten (so a slow
// client slows the producer instead of growing memory) and returns false once the client is
// gone; the reactor writes them one at a time and finishes with the status given to EndWith
// after the queue is empty. Thread-safe; never holds its lock while calling gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "server/rpc_util.h"

namespace vlmd::server {

template <typename Message>
class QueuedWriter : public grpc::ServerWriteReactor<Message> {
 public:
  static constexpr size_t kMaxPending = 256;

  QueuedWriter(const ServiceEnv& env, const Method& method) : env_(env), method_(method) {}

  // Queues `message`; blocks while the queue is full. False (message dropped) when the client
  // went away or the call already ended.
  bool Push(Message message) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      space_.wait(lock, [&] { return broken_ || ended_ || pending_.size() < kMaxPending; });
      if (broken_ || ended_) return false;
      pending_.push_back(std::move(message));
    }
    Pump();
    return true;
  }

  // Ends the call with `status` once the queued messages are written (at once when the client
  // is gone). Only the first call counts.
  void EndWith(const Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) return;
      ended_ = true;
      final_status_ = status;
    }
    space_.notify_all();
    Pump();
  }

  // True once the client cancelled, disconnected or a write failed.
  bool broken() const {
    std::lock_guard<std::mutex> lock(mu_);
    return broken_;
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      writing_ = false;
      if (!pending_.empty()) pending_.pop_front();
      if (!ok) broken_ = true;
    }
    space_.notify_all();
    Pump();
  }

  void OnCancel() override { MarkBroken(); }

 protected:
  const ServiceEnv& env() const { return env_; }

  // Wakes a blocked Push and makes every later one fail (cancel, and OnDone of subclasses).
  void MarkBroken() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
    }
    space_.notify_all();
    Pump();
  }

 private:
  // Starts the next write or the finish, if one is due.
  void Pump() {
    enum class Action { kWrite, kWriteAndFinish, kFinish } action;
    const Message* message = nullptr;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || writing_) return;
      if (broken_) pending_.clear();
      if (!pending_.empty()) {
        writing_ = true;
        message = &pending_.front();
        action = ended_ && final_status_.ok() && pending_.size() == 1 ? Action::kWriteAndFinish
                                                                      : Action::kWrite;
      } else if (ended_ || broken_) {
        action = Action::kFinish;
      } else {
        return;
      }
      if (action != Action::kWrite) {
        finished_ = true;
        Status final_status = broken_ && (!ended_ || final_status_.ok())
                                  ? absl::CancelledError("the client went away")
                                  : final_status_;
        status = CompleteCall(env_, method_, final_status);
      }
    }
    if (action == Action::kWrite) {
      this->StartWrite(message);
    } else if (action == Action::kWriteAndFinish) {
      this->StartWriteAndFinish(message, grpc::WriteOptions(), status);
    } else {
      this->Finish(status);
    }
  }

  ServiceEnv env_;
  Method method_;
  mutable std::mutex mu_;
  std::condition_variable space_;  // signalled when the queue shrinks or the call ends
  std::deque<Message> pending_;    // front is in flight while writing_; guarded by mu_
  bool writing_ = false;           // guarded by mu_
  bool ended_ = false;             // the final status is known; guarded by mu_
  bool broken_ = false;            // client gone or a write failed; guarded by mu_
  bool finished_ = false;          // Finish was called; guarded by mu_
  Status final_status_;            // guarded by mu_
};

}  // namespace vlmd::server
