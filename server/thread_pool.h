// A fixed pool of worker threads for work that must not run on gRPC's callback threads
// (request preparation: image decoding, tokenization; adapter loading). Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vlmd::server {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();  // Stop()
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` (FIFO). After Stop() the task runs inline, so none is ever dropped.
  void Post(std::function<void()> task);
  // Runs the queued tasks to the end and joins the workers. Idempotent.
  void Stop();

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace vlmd::server
