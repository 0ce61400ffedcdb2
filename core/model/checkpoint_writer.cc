#include "core/model/checkpoint_writer.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/file_util.h"
#include "core/io/safetensors.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

StatusOr<DType> FileDType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::kF32;
    case at::kBFloat16: return DType::kBF16;
    case at::kHalf: return DType::kF16;
    default: return absl::InvalidArgumentError("checkpoints are written as f32, bf16 or f16");
  }
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

Status WriteCheckpoint(const std::string& dir, const std::vector<TensorSource>& tensors,
                       at::ScalarType dtype, int64_t max_shard_bytes) {
  ASSIGN_OR_RETURN(DType file_dtype, FileDType(dtype));
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  // Plan shards.
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t bytes = Numel(tensors[i].shape) * DTypeSize(file_dtype);
    if (shard_bytes > 0 && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes;
    total += bytes;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string file = shards.size() == 1
                           ? "model.safetensors"
                           : absl::StrCat("model-", absl::StrFormat("%05d", s + 1), "-of-",
                                          absl::StrFormat("%05d", shards.size()), ".safetensors");
    std::vector<SafetensorsWriter::Spec> specs;
    for (size_t i : shards[s]) specs.push_back({tensors[i].name, file_dtype, tensors[i].shape});
    ASSIGN_OR_RETURN(auto writer,
                     SafetensorsWriter::Create(JoinPath(dir, file), specs, {{"format", "pt"}}));
    for (size_t i : shards[s]) {
      at::Tensor t = tensors[i].produce().detach().to(at::kCPU, dtype).contiguous();
      if (t.sizes().vec() != tensors[i].shape) {
        return absl::InternalError(absl::StrCat("tensor ", tensors[i].name, " changed shape"));
      }
      RETURN_IF_ERROR(writer->Write(tensors[i].name, t.data_ptr(), t.numel() * t.element_size()));
      weight_map[tensors[i].name] = file;
    }
    RETURN_IF_ERROR(writer->Finish());
  }
  std::string index_path = JoinPath(dir, "model.safetensors.index.json");
  if (shards.size() == 1) {
    std::remove(index_path.c_str());
    return absl::OkStatus();
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  return WriteFileAtomic(index_path, index.dump(2));
}

}  // namespace vlmd
