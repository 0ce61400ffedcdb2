#include "server/metrics_http.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vlmd::server {
namespace {

constexpr int kWorkers = 2;
constexpr size_t kMaxPending = 32;         // more waiting connections are closed at once
constexpr size_t kMaxRequestBytes = 8192;  // the request line and headers
constexpr int kIoTimeoutSeconds = 5;

// Splits "host:port", "[v6]:port" or "port". Empty host = all IPv4 interfaces.
Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  std::string h, p;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics.listen \"", address, "\": expected [ipv6]:port"));
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else if (size_t colon = address.rfind(':'); colon != std::string::npos) {
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
  } else {
    p = address;
  }
  int number = 0;
  if (!absl::SimpleAtoi(p, &number) || number < 0 || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen \"", address, "\": the port must be a number in [0, 65535]"));
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = p;
  return absl::OkStatus();
}

void SetTimeouts(int fd) {
  timeval tv{kIoTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

std::string Response(const std::string& status, const std::string& content_type,
                     const std::string& body, bool head) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      head ? "" : body);
}

}  // namespace

StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Collectable> collectable) {
  std::string host, port;
  RETURN_IF_ERROR(SplitAddress(address, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen \"", address, "\": ", gai_strerror(rc)));
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr && server->listen_fd_ < 0; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0) {
      server->listen_fd_ = fd;
    } else {
      last_error = std::strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (server->listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint could not start on ", address, ": ", last_error));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length);
  server->port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (pipe2(server->wake_fd_, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("metrics endpoint: pipe: ", std::strerror(errno)));
  }
  server->collectable_ = std::move(collectable);
  MetricsHttpServer* s = server.get();
  server->acceptor_ = std::thread([s] { s->AcceptLoop(); });
  for (int i = 0; i < kWorkers; ++i) server->workers_.emplace_back([s] { s->WorkerLoop(); });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  stop_.store(true);
  if (wake_fd_[1] >= 0) (void)!write(wake_fd_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  for (int fd : pending_) close(fd);
  for (int fd : {listen_fd_, wake_fd_[0], wake_fd_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MetricsHttpServer::AcceptLoop() {
  while (!stop_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stop_.load() || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= kMaxPending) {
      close(fd);
      continue;
    }
    pending_.push_back(fd);
    cv_.notify_one();
  }
}

void MetricsHttpServer::WorkerLoop() {
  while (true) {
    int fd = -1;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_.load() || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping
      fd = pending_.front();
      pending_.pop_front();
    }
    Handle(fd);
    close(fd);
  }
}

std::string MetricsHttpServer::Body() {
  return prometheus::TextSerializer().Serialize(collectable_->Collect());
}

void MetricsHttpServer::Handle(int fd) {
  SetTimeouts(fd);
  std::string request;
  char buffer[2048];
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.find("\n\n") == std::string::npos) {
    if (request.size() > kMaxRequestBytes) {
      SendAll(fd, Response("431 Request Header Fields Too Large", "text/plain", "", false));
      // Read what the client still sends before closing: closing with unread input resets the
      // connection, and the client could lose the answer.
      shutdown(fd, SHUT_WR);
      for (size_t drained = 0; drained < (1u << 20);) {
        ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        drained += static_cast<size_t>(n);
      }
      return;
    }
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed, or silent past the timeout
    request.append(buffer, static_cast<size_t>(n));
  }
  const std::string line = request.substr(0, request.find_first_of("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  const std::string method = line.substr(0, sp1);
  std::string target = sp1 == std::string::npos ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (method != "GET" && method != "HEAD") {
    SendAll(fd, Response("405 Method Not Allowed", "text/plain", "GET /metrics\n", false));
    return;
  }
  const bool head = method == "HEAD";
  if (target != "/metrics" && target != "/metrics/") {
    SendAll(fd, Response("404 Not Found", "text/plain", "vlmd serves GET /metrics\n", head));
    return;
  }
  SendAll(fd, Response("200 OK", "text/plain; version=0.0.4; charset=utf-8", Body(), head));
}

}  // namespace vlmd::server
