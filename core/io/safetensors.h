// safetensors files: a memory-mapped reader with a fully validated header, sharded checkpoints
// through model.safetensors.index.json, and a streaming writer. No torch here: tensors are
// views of bytes; core/model turns them into at::Tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// Bytes per element; the safetensors name ("F32", "BF16", ...); parse from that name.
int DTypeSize(DType dtype);
const char* DTypeName(DType dtype);
StatusOr<DType> ParseDType(const std::string& name);

// A read-only view of one tensor inside a mapped file (valid while the file object lives).
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// One .safetensors file, mapped read-only. Immutable; thread-safe.
class SafetensorsFile {
 public:
  // Maps and validates: header length in bounds, JSON well-formed, every dtype known,
  // offsets in bounds and ordered, size == numel*dtype size, no overlap, data fully covered.
  // Errors name the file and the tensor.
  static StatusOr<std::shared_ptr<const SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The tensor named `name`, or nullptr.
  const TensorView* Find(const std::string& name) const;
  // The `__metadata__` string map of the header.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: one model.safetensors, or shards listed by model.safetensors.index.json, or a
// single named file. Immutable; thread-safe.
class Checkpoint {
 public:
  // `path` is a directory (index.json preferred, else model.safetensors, else the only
  // *.safetensors file) or a .safetensors file.
  static StatusOr<std::shared_ptr<const Checkpoint>> Open(const std::string& path);
  // All tensor names, sorted.
  std::vector<std::string> Names() const;
  const TensorView* Find(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

// Writes a safetensors file tensor by tensor, so a large model never has to be held twice in
// memory. Declare every tensor first, then write their bytes in declaration order.
class SafetensorsWriter {
 public:
  struct Spec {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  // Creates `path` (via a temporary file renamed on Finish) with a header for `specs`.
  static StatusOr<std::unique_ptr<SafetensorsWriter>> Create(
      const std::string& path, std::vector<Spec> specs,
      const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  // Appends the bytes of the next declared tensor; size must match its spec.
  Status Write(const std::string& name, const void* data, size_t nbytes);
  // Checks that every tensor was written, flushes and renames into place.
  Status Finish();

 private:
  SafetensorsWriter() = default;
  std::string path_, tmp_path_;
  std::vector<Spec> specs_;
  size_t next_ = 0;
  void* file_ = nullptr;  // FILE*
};

// Convenience: writes a whole set of in-memory tensors at once.
struct OwnedTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;
};
Status WriteSafetensors(const std::string& path, const std::map<std::string, OwnedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace vlmd
