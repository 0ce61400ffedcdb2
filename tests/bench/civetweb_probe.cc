// civetweb_probe: starts civetweb (the HTTP server under prometheus-cpp's Exposer) on a few
// addresses and prints why it fails where it does. A diagnostic for the GPU machine, where the
// metrics listener once failed with "null context when constructing CivetServer".
#include <civetweb.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace {

int LogMessage(const struct mg_connection*, const char* message) {
  std::printf("    civetweb: %s\n", message);
  return 1;
}

void Try(const char* ports, const char* threads) {
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = LogMessage;
  const char* options[] = {"listening_ports", ports, "num_threads", threads, nullptr};
  char error[256] = "";
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.configuration_options = options;
  mg_error_data err;
  std::memset(&err, 0, sizeof(err));
  err.text = error;
  err.text_buffer_size = sizeof(error);
  mg_context* ctx = mg_start2(&init, &err);
  std::printf("%-22s threads=%s -> %s %s (code %u)\n", ports, threads, ctx ? "OK" : "FAILED",
              error, err.code);
  if (ctx) mg_stop(ctx);
}

}  // namespace

int main() {
  std::printf("mg_init_library -> %u\n", mg_init_library(0));
  for (const char* p : {"127.0.0.1:0", "127.0.0.1:19091", "0.0.0.0:19092", "19093", "[::1]:19094"}) {
    Try(p, "2");
  }
  Try("127.0.0.1:19095", "1");
  return 0;
}
