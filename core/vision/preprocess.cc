// Qwen2-VL image preprocessing as transformers 5.17's torchvision-based processor does it (spec
// §3.3 fast path, §3.4, §12): smart_resize, the uint8 antialiased bicubic resize, the fused
// rescale+normalize in float32, temporal duplication and the patch order.

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/vision/image.h"

namespace vlmd {
namespace {

constexpr int kChannels = 3;

Status ValidateOptions(const PreprocessOptions& o) {
  if (o.patch_size <= 0 || o.temporal_patch_size <= 0 || o.merge_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "preprocess: patch_size (", o.patch_size, "), temporal_patch_size (", o.temporal_patch_size,
        ") and merge_size (", o.merge_size, ") must be positive"));
  }
  for (int c = 0; c < kChannels; ++c) {
    if (!(o.std[c] > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("preprocess: std[", c, "] must be positive, got ", o.std[c]));
    }
  }
  return absl::OkStatus();
}

Status ValidateImage(const RgbImage& image) {
  const size_t expected = static_cast<size_t>(image.width) * image.height * kChannels;
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("preprocess: image of ", image.width, "x",
                                                   image.height, " holds ", image.pixels.size(),
                                                   " bytes, expected ", expected));
  }
  return absl::OkStatus();
}

// Planar [3][H][W] float32 of (float(u8) - 255*mean) / (255*std). torchvision's fused
// rescale+normalize multiplies the float32 mean/std tensors by 1/rescale_factor = 255.0, in
// float32; normalize then subtracts and divides, each rounded to float32.
std::vector<float> NormalizePlanar(const RgbImage& image, const PreprocessOptions& o) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  std::vector<float> out(plane * kChannels);
  for (int c = 0; c < kChannels; ++c) {
    const float mean255 = o.mean[c] * 255.0f;
    const float std255 = o.std[c] * 255.0f;
    float table[256];
    for (int v = 0; v < 256; ++v) table[v] = (static_cast<float>(v) - mean255) / std255;
    float* dst = out.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = table[image.pixels[i * kChannels + c]];
  }
  return out;
}

// Writes the patches in spec §3.4 order: rows grouped by merge window (windows row-major,
// row-major inside a window), columns (channel, frame, patch row, patch column). A single image
// is `temporal` identical frames, so each frame's block is the same copy.
void Patchify(const std::vector<float>& planes, int height, int width, const PreprocessOptions& o,
              PixelPatches& out) {
  const int p = o.patch_size, m = o.merge_size, t = o.temporal_patch_size;
  const size_t plane = static_cast<size_t>(width) * height;
  float* dst = out.values.data();
  for (int bh = 0; bh < out.grid_h / m; ++bh) {
    for (int bw = 0; bw < out.grid_w / m; ++bw) {
      for (int mh = 0; mh < m; ++mh) {
        for (int mw = 0; mw < m; ++mw) {
          const int y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (int c = 0; c < kChannels; ++c) {
            const float* src = planes.data() + c * plane + static_cast<size_t>(y0) * width + x0;
            for (int tp = 0; tp < t; ++tp) {
              for (int ph = 0; ph < p; ++ph, dst += p) {
                std::memcpy(dst, src + static_cast<size_t>(ph) * width, p * sizeof(float));
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

StatusOr<PixelPatches> PreprocessImage(const RgbImage& image, const PreprocessOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(ValidateImage(image));
  const int factor = options.patch_size * options.merge_size;
  ASSIGN_OR_RETURN(const ResizedSize size, SmartResize(image.height, image.width, factor,
                                                       options.min_pixels, options.max_pixels));
  // torch's kernel copies the input when both sizes are equal (upsample_avx_bilinear_bicubic_uint8
  // and separable_upsample_generic_Nd_kernel_impl), so skipping the resize is exact.
  RgbImage resized;
  const bool same = size.height == image.height && size.width == image.width;
  if (!same) resized = ResizeBicubicAntialias(image, size.height, size.width);
  const RgbImage& src = same ? image : resized;

  PixelPatches out;
  out.grid_t = 1;
  out.grid_h = size.height / options.patch_size;
  out.grid_w = size.width / options.patch_size;
  out.patch_dim = static_cast<int64_t>(kChannels) * options.temporal_patch_size *
                  options.patch_size * options.patch_size;
  out.values.resize(static_cast<size_t>(out.num_patches() * out.patch_dim));
  Patchify(NormalizePlanar(src, options), size.height, size.width, options, out);
  return out;
}

}  // namespace vlmd
