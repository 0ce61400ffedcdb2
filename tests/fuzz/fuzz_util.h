// Helpers shared by the libFuzzer targets: a fail-loudly check that names the broken property
// (libFuzzer then saves the input), and a per-process scratch directory for targets whose API
// takes a path.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace vlmd::fuzz {

// Aborts (libFuzzer reports a crash and writes the input) when a property does not hold.
#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

// The fuzz input as a string view.
inline std::string_view AsView(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A directory private to this process (under $TMPDIR, else /dev/shm or /tmp), made once and
// never removed while the process runs. Not thread-safe (libFuzzer runs inputs one at a time).
const std::string& ScratchDir();

// Writes `data` to ScratchDir()/name and returns the path.
std::string WriteScratch(const std::string& name, std::string_view data);

}  // namespace vlmd::fuzz
