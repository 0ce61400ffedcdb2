// A minimal HTTP/1.0 GET over loopback TCP for tests that read /metrics. Header-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace vlmd::testing {

// Result of one GET: status code (0 when the connection failed) and body.
struct HttpResponse {
  int status = 0;
  std::string body;
};

// Sends `request` (a whole HTTP request) to 127.0.0.1:<port> and reads the answer.
inline HttpResponse HttpSend(int port, const std::string& request) {
  HttpResponse out;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return out;
  }
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return out;
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t space = raw.find(' ');
  size_t body = raw.find("\r\n\r\n");
  if (space == std::string::npos || body == std::string::npos) return out;
  out.status = std::atoi(raw.c_str() + space + 1);
  out.body = raw.substr(body + 4);
  return out;
}

// GET http://127.0.0.1:<port><path>.
inline HttpResponse HttpGet(int port, const std::string& path) {
  return HttpSend(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
}

// Binds a TCP socket on 127.0.0.1 (port 0 = any) and listens, to occupy a port. Returns the
// fd (close it to free the port) and the port through *port; -1 on failure.
inline int OccupyPort(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace vlmd::testing
