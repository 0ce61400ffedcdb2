// The uint8 antialiased bicubic resize of PyTorch (torch.nn.functional.interpolate(uint8, size,
// mode="bicubic", antialias=True, align_corners=False) on CPU, which torchvision's resize calls),
// written from the rules read in PyTorch's aten/src/ATen/native/cpu/UpSampleKernel.cpp
// (HelperInterpBase::_compute_indices_min_size_weights_aa, _compute_index_ranges_weights,
// _compute_index_ranges_int16_weights, HelperInterpCubic::aa_filter,
// separable_upsample_generic_Nd_kernel_impl), UpSampleKernelAVXAntialias.h
// (upsample_avx_bilinear_bicubic_uint8, the path taken on x86 for 3 channels) and UpSample.h
// (area_pixel_compute_scale, cubic_convolution1/2). The algorithm descends from Pillow's
// libImaging/Resample.c. Per axis whose size changes:
//
//   scale   = double(in) / out                       (no scale_factor is passed: sizes only)
//   support = scale >= 1 ? 2 * scale : 2             (bicubic interp_size 4, times 0.5)
//   taps    = int(ceil(support)) * 2 + 1             (max_interp_size)
//   center  = scale * (i + 0.5)
//   xmin    = max(int64(center - support + 0.5), 0)  (truncation toward zero)
//   xsize   = clamp(min(int64(center + support + 0.5), in) - xmin, 0, taps)
//   w[j]    = cubic((j + xmin - center + 0.5) * (scale >= 1 ? 1 / scale : 1)), a = -0.5,
//             then divided by their sum (when the sum is not 0)
//   precision p: see ComputeTorchPrecision (from the largest weight of the whole axis)
//   q[j]    = w*2^p < 0 ? int(w*2^p - 0.5) : int(w*2^p + 0.5)   (int16)
//   out     = clamp((2^(p-1) + sum q[j] * in[xmin + j]) >> p, 0, 255)   (int32 sum)
//
// The horizontal pass (width) runs first, then the vertical one, with a uint8 image in between;
// a pass whose size does not change is skipped, and equal sizes copy the input. The AVX2 kernel
// and the generic one do the same integer arithmetic, so the order of the sums cannot matter.
// tests/unit/vision/parity_test.cc checks this against torch 2.11's output byte for byte.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/vision/image.h"
#include "core/vision/resize_internal.h"

namespace vlmd {
namespace vision_internal {
namespace {

constexpr int kChannels = 3;
constexpr int kPillowPrecision = 22;  // Resample.c: PRECISION_BITS = 32 - 8 - 2
constexpr int kTorchMaxPrecision = 22;

// Rounds half away from zero, as both torch and Pillow do when quantising weights.
int32_t QuantizeWeight(double w, int precision) {
  const double v = w * static_cast<double>(1 << precision);
  return static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
}

// (acc >> precision) clamped to 0..255; acc < 0 maps to 0 without shifting a negative number.
inline uint8_t ClampShift(int32_t acc, int precision) {
  if (acc < 0) return 0;
  const int32_t v = acc >> precision;
  return static_cast<uint8_t>(v > 255 ? 255 : v);
}

}  // namespace

double CubicKernel(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

DoubleTable ComputeDoubleTable(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double inv_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
  DoubleTable t;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.start.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size) * t.taps, 0.0);
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xend = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size);
    const int64_t xsize = std::clamp<int64_t>(xend - xmin, 0, t.taps);
    double* w = &t.weights[static_cast<size_t>(i) * t.taps];
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      w[j] = CubicKernel((static_cast<double>(j + xmin) - center + 0.5) * inv_scale);
      total += w[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        w[j] /= total;
        t.max_weight = std::max(t.max_weight, w[j]);
      }
    }
    t.start[i] = static_cast<int>(xmin);
    t.count[i] = static_cast<int>(xsize);
  }
  return t;
}

int ComputeTorchPrecision(double max_weight) {
  int p = 0;
  for (; p < kTorchMaxPrecision; ++p) {
    const int next = static_cast<int>(0.5 + max_weight * (1 << (p + 1)));
    if (next >= (1 << 15)) break;
  }
  return p;
}

ResampleTable MakeResampleTable(int in_size, int out_size, WeightFormat format) {
  DoubleTable d = ComputeDoubleTable(in_size, out_size);
  ResampleTable t;
  t.in_size = in_size;
  t.out_size = out_size;
  t.taps = d.taps;
  t.precision =
      format == WeightFormat::kTorchInt16 ? ComputeTorchPrecision(d.max_weight) : kPillowPrecision;
  t.start = std::move(d.start);
  t.count = std::move(d.count);
  t.weights.resize(d.weights.size());
  for (size_t k = 0; k < d.weights.size(); ++k) {
    t.weights[k] = QuantizeWeight(d.weights[k], t.precision);
  }
  return t;
}

namespace {

// Rows resampled together: their pixels are interleaved so that the inner loop runs over
// kStripRows * 3 contiguous lanes, which the compiler vectorises.
constexpr int kStripRows = 8;
constexpr int kLanes = kStripRows * kChannels;

// Copies rows [y0, y0 + rows) of `in` into strip[x][r][c] (missing rows stay zero).
void FillStrip(const RgbImage& in, int y0, int rows, std::vector<uint8_t>& strip) {
  if (rows < kStripRows) std::fill(strip.begin(), strip.end(), 0);
  const size_t row_len = static_cast<size_t>(in.width) * kChannels;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* src = in.pixels.data() + (y0 + r) * row_len;
    for (int x = 0; x < in.width; ++x) {
      uint8_t* dst = &strip[static_cast<size_t>(x) * kLanes + r * kChannels];
      dst[0] = src[x * kChannels + 0];
      dst[1] = src[x * kChannels + 1];
      dst[2] = src[x * kChannels + 2];
    }
  }
}

// Resamples one strip horizontally into rows [y0, y0 + rows) of `out`.
void ResampleStrip(const std::vector<uint8_t>& strip, const ResampleTable& t, int y0, int rows,
                   RgbImage& out) {
  const int32_t half = 1 << (t.precision - 1);
  const size_t out_row_len = static_cast<size_t>(t.out_size) * kChannels;
  for (int ox = 0; ox < t.out_size; ++ox) {
    int32_t acc[kLanes];
    for (int l = 0; l < kLanes; ++l) acc[l] = half;
    const int32_t* k = &t.weights[static_cast<size_t>(ox) * t.taps];
    const uint8_t* src = &strip[static_cast<size_t>(t.start[ox]) * kLanes];
    for (int j = 0; j < t.count[ox]; ++j, src += kLanes) {
      const int32_t w = k[j];
      for (int l = 0; l < kLanes; ++l) acc[l] += w * src[l];
    }
    for (int r = 0; r < rows; ++r) {
      uint8_t* dst = out.pixels.data() + (y0 + r) * out_row_len + ox * kChannels;
      for (int c = 0; c < kChannels; ++c) dst[c] = ClampShift(acc[r * kChannels + c], t.precision);
    }
  }
}

}  // namespace

RgbImage ResampleHorizontal(const RgbImage& in, const ResampleTable& table) {
  RgbImage out;
  out.width = table.out_size;
  out.height = in.height;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * kChannels);
  std::vector<uint8_t> strip(static_cast<size_t>(in.width) * kLanes);
  for (int y0 = 0; y0 < in.height; y0 += kStripRows) {
    const int rows = std::min(kStripRows, in.height - y0);
    FillStrip(in, y0, rows, strip);
    ResampleStrip(strip, table, y0, rows, out);
  }
  return out;
}

RgbImage ResampleVertical(const RgbImage& in, const ResampleTable& table) {
  RgbImage out;
  out.width = in.width;
  out.height = table.out_size;
  const size_t row_len = static_cast<size_t>(in.width) * kChannels;
  out.pixels.resize(row_len * out.height);
  const int32_t half = 1 << (table.precision - 1);
  std::vector<int32_t> acc(row_len);
  for (int oy = 0; oy < table.out_size; ++oy) {
    std::fill(acc.begin(), acc.end(), half);
    const int32_t* k = &table.weights[static_cast<size_t>(oy) * table.taps];
    for (int j = 0; j < table.count[oy]; ++j) {
      const int32_t w = k[j];
      const uint8_t* src = in.pixels.data() + (table.start[oy] + j) * row_len;
      for (size_t x = 0; x < row_len; ++x) acc[x] += w * src[x];
    }
    uint8_t* dst = out.pixels.data() + oy * row_len;
    for (size_t x = 0; x < row_len; ++x) dst[x] = ClampShift(acc[x], table.precision);
  }
  return out;
}

RgbImage ResizeBicubicAntialiasWithFormat(const RgbImage& image, int out_height, int out_width,
                                          WeightFormat format) {
  const bool horizontal = out_width != image.width;
  const bool vertical = out_height != image.height;
  if (!horizontal && !vertical) return image;
  if (!vertical) {
    return ResampleHorizontal(image, MakeResampleTable(image.width, out_width, format));
  }
  const ResampleTable vertical_table = MakeResampleTable(image.height, out_height, format);
  if (!horizontal) return ResampleVertical(image, vertical_table);
  const RgbImage temp =
      ResampleHorizontal(image, MakeResampleTable(image.width, out_width, format));
  return ResampleVertical(temp, vertical_table);
}

}  // namespace vision_internal

RgbImage ResizeBicubicAntialias(const RgbImage& image, int out_height, int out_width) {
  if (out_height <= 0 || out_width <= 0 || image.width <= 0 || image.height <= 0) return {};
  return vision_internal::ResizeBicubicAntialiasWithFormat(
      image, out_height, out_width, vision_internal::WeightFormat::kTorchInt16);
}

}  // namespace vlmd
