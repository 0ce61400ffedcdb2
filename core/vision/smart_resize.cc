// smart_resize of transformers' Qwen2-VL image processor (spec/qwen2vl.md §3.2, 5.x form).
//
// Every step is IEEE double arithmetic in the order Python evaluates it, and Python's round()
// (round half to even) is std::nearbyint in the default FE_TONEAREST mode: 70/28 = 2.5 rounds
// to 2, not 3.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/vision/image.h"

namespace vlmd {
namespace {

constexpr double kMaxAspectRatio = 200.0;

// round(x / factor) * factor with Python's round-half-even.
int64_t RoundToFactor(int64_t x, int factor) {
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(x) / factor)) * factor;
}

}  // namespace

StatusOr<ResizedSize> SmartResize(int height, int width, int factor, int64_t min_pixels,
                                  int64_t max_pixels) {
  if (height <= 0 || width <= 0 || factor <= 0 || min_pixels <= 0 || max_pixels <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "smart_resize: sizes must be positive (height ", height, ", width ", width, ", factor ",
        factor, ", min_pixels ", min_pixels, ", max_pixels ", max_pixels, ")"));
  }
  const double ratio = static_cast<double>(std::max(height, width)) / std::min(height, width);
  if (ratio > kMaxAspectRatio) {
    return absl::InvalidArgumentError(
        absl::StrCat("image of ", width, "x", height, " (width x height): absolute aspect ratio ",
                     ratio, " must be smaller than ", kMaxAspectRatio));
  }
  int64_t h_bar = RoundToFactor(height, factor);
  int64_t w_bar = RoundToFactor(width, factor);
  const double h = height;
  const double w = width;
  const double area = static_cast<double>(static_cast<int64_t>(height) * width);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(area / static_cast<double>(max_pixels));
    h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / factor)) * factor);
    w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / factor)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / area);
    h_bar = static_cast<int64_t>(std::ceil(h * beta / factor)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / factor)) * factor;
  }
  // Python would go on with a 0-sized side (only reachable with tiny min_pixels); refuse it.
  if (h_bar < factor || w_bar < factor || h_bar > INT32_MAX || w_bar > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("smart_resize: image of ", width, "x", height,
                                                   " (width x height) resizes to ", w_bar, "x",
                                                   h_bar, ", which is not usable"));
  }
  return ResizedSize{static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

}  // namespace vlmd
