// The Prometheus endpoint of `vlmd serve`: a small HTTP/1.1 server that answers GET (and
// HEAD) /metrics with the text exposition format and closes each connection.
//
// Written here rather than taken from prometheus-cpp's Exposer: the Exposer's civetweb (Debian
// 12 build) starts its threads with a fixed 100 KiB stack, and in a process that has loaded the
// CUDA libtorch the static TLS alone exceeds that, so pthread_create fails and /metrics never
// comes up on a GPU server ("null context when constructing CivetServer").
#pragma once

#include <prometheus/collectable.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status.h"

namespace vlmd::server {

class MetricsHttpServer {
 public:
  // Listens on `address`: "host:port", "[ipv6]:port" or a bare port (all IPv4 interfaces);
  // port 0 picks a free one. UNAVAILABLE naming the address when it cannot listen,
  // INVALID_ARGUMENT when the address is malformed.
  static StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Collectable> collectable);
  // Stops accepting, finishes the connections in hand and joins the threads.
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void AcceptLoop();
  void WorkerLoop();
  void Handle(int fd);
  std::string Body();

  std::shared_ptr<prometheus::Collectable> collectable_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> pending_;  // accepted connections waiting for a worker
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace vlmd::server
