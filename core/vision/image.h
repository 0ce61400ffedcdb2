// Image decoding and Qwen2-VL preprocessing (spec/qwen2vl.md §3, §12): decode with stb_image,
// RGB conversion as PIL's convert("RGB"), smart_resize, the uint8 antialiased bicubic resize of
// torch/torchvision, fused rescale+normalize, temporal duplication and the patch order.
// Pure functions; thread-safe. No torch.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// Limits checked on the header before any pixel is decoded.
struct DecodeLimits {
  int64_t max_bytes = 32 << 20;     // encoded size; 0 = no limit
  int64_t max_pixels = 50'000'000;  // width*height from the header; 0 = no limit
};

// 8-bit RGB, row-major, interleaved (HWC).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height*width*3
};

// Reads width/height (and format) from the header only (no pixel buffer). INVALID_ARGUMENT
// for data that is not a PNG/JPEG/BMP/GIF image, naming `what` (e.g. the file name or "image 2").
struct ImageInfo {
  int width = 0;
  int height = 0;
  int channels = 0;        // as stb reports them: 1 (L), 2 (LA), 3 (RGB), 4 (RGBA; palette+tRNS)
  bool is_16_bit = false;  // PNG with 16 bits per sample
  std::string format;      // "png", "jpeg", "bmp", "gif"
};
StatusOr<ImageInfo> ProbeImage(std::string_view data, std::string_view what);

// Decodes PNG/JPEG/BMP/GIF (first frame) to RGB. Alpha is dropped (not composited), grey is
// replicated, palettes are expanded: the same as PIL's convert("RGB"). Refuses images over the
// limits (checked on the header, before decoding) with INVALID_ARGUMENT naming the size and the
// limit; corrupt or truncated data gives INVALID_ARGUMENT naming `what` (and stb's reason).
// PNG, BMP and GIF give PIL's bytes exactly, including 16-bit grey (saturated to 255 as PIL's
// I;16 -> RGB does; 16-bit colour keeps the high byte) and GIF transparency (the transparent
// index's palette colour). JPEG is decoded by libjpeg-turbo as PIL does, CMYK included. EXIF
// orientation is not applied. Thread-safe (stb keeps its error text
// thread-local and we set none of its global flags).
StatusOr<RgbImage> DecodeImage(std::string_view data, const DecodeLimits& limits,
                               std::string_view what);

// Preprocessing parameters; defaults are the processor's class defaults (spec §12).
struct PreprocessOptions {
  int64_t min_pixels = 3136;
  int64_t max_pixels = 1003520;
  int patch_size = 14;
  int temporal_patch_size = 2;
  int merge_size = 2;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
};

// smart_resize (spec §3.2): round-half-even to a multiple of `factor`, then scaled into
// [min_pixels, max_pixels]. INVALID_ARGUMENT when the aspect ratio exceeds 200.
struct ResizedSize {
  int height = 0;
  int width = 0;
};
StatusOr<ResizedSize> SmartResize(int height, int width, int factor, int64_t min_pixels,
                                  int64_t max_pixels);

// torch's uint8 bicubic resize with antialias=True, align_corners=False (the separable
// fixed-point Pillow-style resampler; horizontal pass, then vertical). HWC RGB in and out.
// Equal sizes return a copy; an empty input or a size <= 0 gives an empty image.
RgbImage ResizeBicubicAntialias(const RgbImage& image, int out_height, int out_width);

// One image ready for the vision tower.
struct PixelPatches {
  std::vector<float> values;  // [grid_t*grid_h*grid_w, 3*temporal*patch*patch] row-major
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;
  int64_t num_patches() const { return grid_t * grid_h * grid_w; }
  int64_t patch_dim = 0;  // 3*temporal*patch*patch (1176)
  // Tokens the LLM sees for this image: patches / merge_size^2.
  int64_t num_tokens(int merge_size) const { return num_patches() / (merge_size * merge_size); }
};

// Resize (smart_resize + ResizeBicubicAntialias) + normalize (x - 255*mean)/(255*std) in float32
// + temporal duplication + §3.4 patch order.
StatusOr<PixelPatches> PreprocessImage(const RgbImage& image, const PreprocessOptions& options);

}  // namespace vlmd
