// Image decoding and Qwen2-VL preprocessing on arbitrary bytes: ProbeImage, DecodeImage with
// small limits (so the fuzzer stays fast and a huge header must be refused before decoding),
// then PreprocessImage with small pixel bounds. Properties: the probe and the decoder agree on
// the size, the pixel buffer is width*height*3, and the patches match their grid.
#include <algorithm>
#include <cstdint>

#include "core/vision/image.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  std::string_view bytes = fuzz::AsView(data, size);
  StatusOr<ImageInfo> info = ProbeImage(bytes, "fuzz");
  DecodeLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_pixels = 1 << 18;
  StatusOr<RgbImage> image = DecodeImage(bytes, limits, "fuzz");
  if (!image.ok()) {
    FUZZ_CHECK(image.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(info.ok());
  FUZZ_CHECK(info->width == image->width && info->height == image->height);
  FUZZ_CHECK(image->width > 0 && image->height > 0);
  FUZZ_CHECK(int64_t{image->width} * image->height <= limits.max_pixels);
  FUZZ_CHECK(image->pixels.size() == size_t(image->width) * image->height * 3);
  PreprocessOptions options;
  options.min_pixels = 28 * 28;
  options.max_pixels = 28 * 28 * 16;
  StatusOr<PixelPatches> patches = PreprocessImage(*image, options);
  if (!patches.ok()) {
    FUZZ_CHECK(patches.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(patches->grid_t == 1 && patches->grid_h > 0 && patches->grid_w > 0);
  FUZZ_CHECK(patches->grid_h % 2 == 0 && patches->grid_w % 2 == 0);
  FUZZ_CHECK(patches->patch_dim == 3 * 2 * 14 * 14);
  FUZZ_CHECK(patches->values.size() == size_t(patches->num_patches() * patches->patch_dim));
  // smart_resize keeps max_pixels, except that (as in transformers) the short side never
  // drops below one factor: an extreme aspect ratio (up to 200) may go over.
  FUZZ_CHECK(patches->num_patches() * 14 * 14 <= options.max_pixels ||
             std::min(patches->grid_h, patches->grid_w) == 2);
  FUZZ_CHECK(patches->num_patches() * 14 * 14 <= options.max_pixels * 200);
  return 0;
}
