// A small RGB raster for the training plots: rectangles, antialiased polylines, text in
// stb_easy_font's built-in bitmap font, and PNG encoding with stb_image_write (Debian libstb).
// Not thread-safe; one canvas per plot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// An 8-bit sRGB colour.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// A point in pixel coordinates (x rightwards, y downwards; pixel centres at +0.5).
struct PointF {
  double x = 0, y = 0;
};

// The clipping rectangle [x0, x1) x [y0, y1) drawing is limited to.
struct ClipRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// An RGB image being drawn on. Drawing is clipped to the canvas.
class Canvas {
 public:
  // A width x height canvas (at least 1x1) filled with `background`.
  Canvas(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  // Row-major interleaved RGB, height*width*3 bytes.
  const std::vector<uint8_t>& pixels() const { return pixels_; }
  // The pixel at (x, y); both must be inside the canvas.
  Rgb At(int x, int y) const;

  // Fills [x0, x1) x [y0, y1), clipped to the canvas.
  void FillRect(int x0, int y0, int x1, int y1, Rgb color);
  // Draws a polyline `line_width` pixels wide, antialiased, blended over the canvas with
  // `alpha` in one pass (overlapping segments do not darken each other), clipped to `clip`.
  void DrawPolyline(const std::vector<PointF>& points, double line_width, Rgb color, double alpha,
                    const ClipRect& clip);
  // Draws ASCII `text` with its top-left corner at (x, y), each font pixel `scale` pixels wide.
  void DrawText(const std::string& text, int x, int y, int scale, Rgb color);
  // Width and height of `text` as DrawText draws it.
  static int TextWidth(const std::string& text, int scale);
  static int TextHeight(int scale);

  // The canvas as a PNG file's bytes. INTERNAL if the encoder fails.
  StatusOr<std::string> EncodePng() const;

 private:
  void Blend(int x, int y, Rgb color, double alpha);

  int width_, height_;
  std::vector<uint8_t> pixels_;
};

}  // namespace vlmd
