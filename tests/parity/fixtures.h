// Helpers for parity tests: the fixtures directory, the device/dtype under test (env
// VLMD_TEST_DEVICE / VLMD_TEST_DTYPE, default cpu/float32), tolerances, tensor loading.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "core/io/safetensors.h"
#include "core/model/weights.h"
#include "nlohmann/json.hpp"

namespace vlmd::testing {

inline std::string FixturesDir() { return std::string(VLMD_SOURCE_DIR) + "/tests/fixtures"; }

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v ? std::string(v) : fallback;
}
inline std::string TestDevice() { return EnvOr("VLMD_TEST_DEVICE", "cpu"); }
inline std::string TestDtype() { return EnvOr("VLMD_TEST_DTYPE", "float32"); }
inline bool LowPrecision() { return TestDtype() != "float32"; }

// Reads a JSON file (fails the test on error).
nlohmann::json ReadJsonFile(const std::string& path);

// All tensors of a safetensors file, as CPU tensors of their stored dtype.
std::map<std::string, at::Tensor> LoadTensors(const std::string& path);

// max |a - b| and max |b|, both converted to float32 on the CPU.
struct Diff {
  double max_abs = 0;
  double ref_max = 0;
  double cosine = 1;
};
Diff Compare(const at::Tensor& actual, const at::Tensor& expected);

}  // namespace vlmd::testing
