// Minimal leveled logging to stderr, one line per message, thread-safe.
#pragma once

#include <sstream>
#include <string>

namespace vlmd {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level printed (default kInfo; VLMD_LOG_LEVEL=debug|info|warning|error).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Writes one formatted line ("2026-11-25T04:10:17Z I file.cc:12] msg") to stderr.
void LogLine(LogLevel level, const char* file, int line, const std::string& message);

namespace internal {
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  ~LogMessage() { LogLine(level_, file_, line_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace vlmd

#define VLMD_LOG(level)                                                        \
  if (::vlmd::LogLevel::k##level < ::vlmd::GetLogLevel()) {                    \
  } else                                                                       \
    ::vlmd::internal::LogMessage(::vlmd::LogLevel::k##level, __FILE__, __LINE__).stream()
