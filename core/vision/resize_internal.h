// Internals of the separable antialiased bicubic resampler (resize.cc), exposed for tests: the
// per-axis weight tables and a variant with Pillow's weight format, so that a test can show that
// the only difference from Pillow's Image.resize(BICUBIC) is the fixed-point format.
#pragma once

#include <cstdint>
#include <vector>

#include "core/vision/image.h"

namespace vlmd {
namespace vision_internal {

// How the normalised double weights become integers.
enum class WeightFormat {
  // PyTorch's uint8 kernel (_compute_index_ranges_int16_weights): int16 weights with the largest
  // precision p <= 22 at which the axis's largest weight, rounded, stays below 2^15. This is the
  // reference for vlmd.
  kTorchInt16,
  // Pillow's ImagingResample (normalize_coeffs_8bpc): int32 weights, always 22 fractional bits.
  kPillowInt32,
};

// Fixed-point weights of one axis: output i reads input[start[i] .. start[i] + count[i]) with
// weights[i * taps ..]. Sum over a window is about 1 << precision.
struct ResampleTable {
  int in_size = 0;
  int out_size = 0;
  int taps = 0;       // row stride of `weights` (torch's max_interp_size)
  int precision = 0;  // fractional bits of the weights
  std::vector<int> start;
  std::vector<int> count;
  std::vector<int32_t> weights;
};

// The normalised double weights of one axis before quantisation (for tests): same layout as
// ResampleTable, plus the largest weight of the axis.
struct DoubleTable {
  int taps = 0;
  std::vector<int> start;
  std::vector<int> count;
  std::vector<double> weights;
  double max_weight = 0.0;
};

// Keys' cubic convolution kernel with a = -0.5, in torch's operation order.
double CubicKernel(double x);

// Window and normalised weights for resizing an axis of `in_size` to `out_size` (both > 0).
DoubleTable ComputeDoubleTable(int in_size, int out_size);

// torch's weight precision: the first p in 0..21 for which (int)(0.5 + max_weight * 2^(p+1)) >=
// 2^15, else 22; i.e. the largest p <= 22 with round(max_weight * 2^p) < 2^15.
int ComputeTorchPrecision(double max_weight);

// Quantised table for one axis.
ResampleTable MakeResampleTable(int in_size, int out_size, WeightFormat format);

// One pass along the width (rows stay) or along the height (columns stay); uint8 out, with
// rounding and clamping to 0..255.
RgbImage ResampleHorizontal(const RgbImage& in, const ResampleTable& table);
RgbImage ResampleVertical(const RgbImage& in, const ResampleTable& table);

// ResizeBicubicAntialias with a chosen weight format.
RgbImage ResizeBicubicAntialiasWithFormat(const RgbImage& image, int out_height, int out_width,
                                          WeightFormat format);

}  // namespace vision_internal
}  // namespace vlmd
