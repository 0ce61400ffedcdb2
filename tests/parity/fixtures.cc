#include "tests/parity/fixtures.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace vlmd::testing {

nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, false);
}

std::map<std::string, at::Tensor> LoadTensors(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  auto file = SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return out;
  for (const TensorView& v : (*file)->tensors()) {
    out[v.name] = ToTensor(v, ToScalarType(v.dtype), at::kCPU);
  }
  return out;
}

Diff Compare(const at::Tensor& actual, const at::Tensor& expected) {
  at::Tensor a = actual.to(at::kCPU, at::kDouble).flatten();
  at::Tensor b = expected.to(at::kCPU, at::kDouble).flatten();
  Diff d;
  if (a.numel() != b.numel()) {
    ADD_FAILURE() << "size " << a.numel() << " vs " << b.numel();
    d.max_abs = 1e30;
    return d;
  }
  d.max_abs = (a - b).abs().max().item<double>();
  d.ref_max = b.abs().max().item<double>();
  d.cosine = (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>() + 1e-30);
  return d;
}

}  // namespace vlmd::testing
