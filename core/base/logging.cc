#include "core/base/logging.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace vlmd {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("VLMD_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "warning") == 0) return LogLevel::kWarning;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& Level() {
  static std::atomic<int> level(static_cast<int>(LevelFromEnv()));
  return level;
}

const char* Basename(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Level().load()); }

void LogLine(LogLevel level, const char* file, int line, const std::string& message) {
  static std::mutex mu;
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  std::time_t now = std::time(nullptr);
  std::tm tm_utc;
  gmtime_r(&now, &tm_utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s %c %s:%d] %s\n", stamp, kLetters[static_cast<int>(level)],
               Basename(file), line, message.c_str());
  std::fflush(stderr);
}

}  // namespace vlmd
