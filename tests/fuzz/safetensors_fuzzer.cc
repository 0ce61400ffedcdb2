// safetensors header parsing on arbitrary files: SafetensorsFile::Open must refuse anything
// malformed with INVALID_ARGUMENT and, when it accepts a file, every tensor view must lie inside
// the mapping and hold exactly numel * dtype size bytes. Checkpoint::Open on the same file too.
#include <cstdint>

#include "core/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  std::string path = fuzz::WriteScratch("model.safetensors", fuzz::AsView(data, size));
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(file.status().message().find(path) != std::string_view::npos);
    return 0;
  }
  const auto* begin = reinterpret_cast<const uint8_t*>(data);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | begin[i];
  uint64_t data_size = size - 8 - header_len;
  uint64_t total = 0;
  for (const TensorView& t : (*file)->tensors()) {
    unsigned __int128 numel = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0);
      numel *= static_cast<unsigned __int128>(d);
      FUZZ_CHECK(numel <= (static_cast<unsigned __int128>(1) << 64));
    }
    FUZZ_CHECK(numel * static_cast<unsigned>(DTypeSize(t.dtype)) == t.nbytes);
    FUZZ_CHECK(static_cast<int64_t>(numel) == t.numel());
    total += t.nbytes;
    FUZZ_CHECK((*file)->Find(t.name) == &t);
    // Touch the first and last byte: they must be inside the mapping.
    if (t.nbytes > 0) {
      const auto* p = static_cast<const volatile uint8_t*>(t.data);
      (void)p[0];
      (void)p[t.nbytes - 1];
    }
  }
  FUZZ_CHECK(total == data_size);
  auto ckpt = Checkpoint::Open(path);
  FUZZ_CHECK(ckpt.ok());
  FUZZ_CHECK((*ckpt)->Names().size() == (*file)->tensors().size());
  return 0;
}
