#include "core/jobs/worker_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace vlmd::jobs {
namespace {

constexpr int kPollMs = 100;
constexpr size_t kMaxLine = 1 << 20;  // longer lines are cut (a runaway worker's output)

}  // namespace

WorkerMonitor::WorkerMonitor(int pid, int stdout_fd, LineFn on_line, ExitFn on_exit)
    : pid_(pid), fd_(stdout_fd), on_line_(std::move(on_line)), on_exit_(std::move(on_exit)) {
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

WorkerMonitor::~WorkerMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

bool WorkerMonitor::ReadAvailable() {
  char buf[65536];
  while (true) {
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending_.find('\n', start)) != std::string::npos) {
      on_line_(pending_.substr(start, nl - start));
      start = nl + 1;
    }
    pending_.erase(0, start);
    if (pending_.size() > kMaxLine) {
      on_line_(pending_);
      pending_.clear();
    }
  }
}

void WorkerMonitor::Run() {
  bool open = true;
  while (!stop_) {
    if (open) {
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, kPollMs);
      if (r > 0) open = ReadAvailable();
    } else {
      usleep(kPollMs * 1000);
    }
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) {
      if (open) ReadAvailable();  // what it wrote just before exiting
      if (!pending_.empty()) on_line_(pending_);
      pending_.clear();
      on_exit_(done == pid_ ? status : -1);
      return;
    }
  }
}

}  // namespace vlmd::jobs
