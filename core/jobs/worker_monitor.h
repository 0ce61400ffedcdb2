// Watches one running worker (a child of this process): a thread reads its stdout line by line
// and, once the worker has exited, reaps it with waitpid and reports the wait status.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace vlmd::jobs {

class WorkerMonitor {
 public:
  using LineFn = std::function<void(const std::string& line)>;
  using ExitFn = std::function<void(int wait_status)>;

  // Starts the thread. `on_line` gets every stdout line (without the newline) in order;
  // `on_exit` is called once, last, after the worker was reaped. Both run on the monitor's
  // thread. Takes ownership of `stdout_fd`.
  WorkerMonitor(int pid, int stdout_fd, LineFn on_line, ExitFn on_exit);
  // Stops watching and joins the thread; does not signal the worker. If the worker has not
  // exited yet, on_exit is not called and the worker keeps running (it is not reaped).
  // Must not be called from on_line/on_exit.
  ~WorkerMonitor();
  WorkerMonitor(const WorkerMonitor&) = delete;
  WorkerMonitor& operator=(const WorkerMonitor&) = delete;

  int pid() const { return pid_; }

 private:
  void Run();
  // Reads what is available; returns false at end of file or on error.
  bool ReadAvailable();

  int pid_;
  int fd_;
  LineFn on_line_;
  ExitFn on_exit_;
  std::string pending_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vlmd::jobs
