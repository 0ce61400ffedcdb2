#include "core/train/canvas.h"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace vlmd {
namespace {

// Distance from p to the segment [a, b].
double SegmentDistance(PointF p, PointF a, PointF b) {
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double length2 = dx * dx + dy * dy;
  double t = length2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / length2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double ex = a.x + t * dx - p.x, ey = a.y + t * dy - p.y;
  return std::sqrt(ex * ex + ey * ey);
}

// Raises `coverage` to the antialiased coverage of one thick segment.
void CoverSegment(PointF a, PointF b, double half_width, const ClipRect& clip, int stride,
                  std::vector<float>* coverage) {
  const double pad = half_width + 1.0;
  const int x0 = std::max(clip.x0, static_cast<int>(std::floor(std::min(a.x, b.x) - pad)));
  const int x1 = std::min(clip.x1, static_cast<int>(std::ceil(std::max(a.x, b.x) + pad)));
  const int y0 = std::max(clip.y0, static_cast<int>(std::floor(std::min(a.y, b.y) - pad)));
  const int y1 = std::min(clip.y1, static_cast<int>(std::ceil(std::max(a.y, b.y) + pad)));
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const double d = SegmentDistance({x + 0.5, y + 0.5}, a, b);
      const float c = static_cast<float>(std::clamp(half_width + 0.5 - d, 0.0, 1.0));
      float& cell = (*coverage)[static_cast<size_t>(y) * stride + x];
      cell = std::max(cell, c);
    }
  }
}

void AppendBytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

}  // namespace

Canvas::Canvas(int width, int height, Rgb background)
    : width_(std::max(width, 1)), height_(std::max(height, 1)) {
  pixels_.resize(static_cast<size_t>(width_) * height_ * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Canvas::At(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::Blend(int x, int y, Rgb color, double alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0) return;
  uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  const uint8_t c[3] = {color.r, color.g, color.b};
  for (int k = 0; k < 3; ++k) {
    p[k] = static_cast<uint8_t>(std::lround(p[k] * (1.0 - alpha) + c[k] * alpha));
  }
}

void Canvas::FillRect(int x0, int y0, int x1, int y1, Rgb color) {
  for (int y = std::max(y0, 0); y < std::min(y1, height_); ++y) {
    for (int x = std::max(x0, 0); x < std::min(x1, width_); ++x) Blend(x, y, color, 1.0);
  }
}

void Canvas::DrawPolyline(const std::vector<PointF>& points, double line_width, Rgb color,
                          double alpha, const ClipRect& clip) {
  if (points.empty()) return;
  const ClipRect c{std::max(clip.x0, 0), std::max(clip.y0, 0), std::min(clip.x1, width_),
                   std::min(clip.y1, height_)};
  std::vector<float> coverage(static_cast<size_t>(width_) * height_, 0.0f);
  const double half = line_width / 2.0;
  if (points.size() == 1) CoverSegment(points[0], points[0], half, c, width_, &coverage);
  for (size_t i = 1; i < points.size(); ++i) {
    CoverSegment(points[i - 1], points[i], half, c, width_, &coverage);
  }
  for (int y = c.y0; y < c.y1; ++y) {
    for (int x = c.x0; x < c.x1; ++x) {
      Blend(x, y, color, alpha * coverage[static_cast<size_t>(y) * width_ + x]);
    }
  }
}

void Canvas::DrawText(const std::string& text, int x, int y, int scale, Rgb color) {
  std::string copy = text;  // stb_easy_font takes a mutable char*
  // 64 bytes per quad; a glyph has at most a dozen segments (stb's "~270 bytes" is an average).
  std::vector<char> buffer(copy.size() * 1024 + 1024);
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(),
                                        static_cast<int>(buffer.size()));
  constexpr int kVertexBytes = 16;  // x, y, z floats + 4 colour bytes
  for (int q = 0; q < quads; ++q) {
    float v0[2], v2[2];  // the quad's top-left and bottom-right corners
    std::memcpy(v0, &buffer[static_cast<size_t>(q) * 4 * kVertexBytes], sizeof(v0));
    std::memcpy(v2, &buffer[(static_cast<size_t>(q) * 4 + 2) * kVertexBytes], sizeof(v2));
    FillRect(x + static_cast<int>(std::lround(v0[0] * scale)),
             y + static_cast<int>(std::lround(v0[1] * scale)),
             x + static_cast<int>(std::lround(v2[0] * scale)),
             y + static_cast<int>(std::lround(v2[1] * scale)), color);
  }
}

int Canvas::TextWidth(const std::string& text, int scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

int Canvas::TextHeight(int scale) { return 7 * scale; }  // cap height of stb_easy_font

StatusOr<std::string> Canvas::EncodePng() const {
  std::string png;
  if (stbi_write_png_to_func(AppendBytes, &png, width_, height_, 3, pixels_.data(), width_ * 3) ==
      0) {
    return absl::InternalError("PNG encoding failed");
  }
  return png;
}

}  // namespace vlmd
