// First frame of a GIF, as PIL gives it: GifImagePlugin opens frame 0 as a palette image (mode P)
// whose canvas is first filled with the transparent index (or index 0 without transparency), then
// the frame's indices are drawn into its rectangle; convert("RGB") maps every index through the
// palette. Transparent pixels therefore get the palette colour of the transparent index.
//
// stb decodes the LZW data to RGBA but leaves transparent pixels black (0,0,0,0) and fills the
// canvas outside the frame with black or the background colour. We take stb's colours for opaque
// pixels inside the frame and put the palette colour PIL would show everywhere else, using the
// palette, transparent index and frame rectangle read here from the GIF blocks.

#include <stb_image.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/vision/decode_internal.h"

namespace vlmd {
namespace vision_internal {
namespace {

struct GifFrameInfo {
  std::array<uint8_t, 256 * 3> palette{};  // local table if present, else global
  int canvas_index = 0;                    // transparent index, or 0
  int left = 0, top = 0, width = 0, height = 0;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Has(size_t n) const { return pos_ + n <= data_.size(); }
  uint8_t U8() { return static_cast<uint8_t>(data_[pos_++]); }
  int U16() {
    const int lo = U8();
    return lo | (U8() << 8);
  }
  void Skip(size_t n) { pos_ += n; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

bool ReadColorTable(Reader& r, uint8_t flags, GifFrameInfo& info) {
  const size_t entries = size_t{2} << (flags & 7);
  if (!r.Has(entries * 3)) return false;
  for (size_t i = 0; i < entries * 3; ++i) info.palette[i] = r.U8();
  return true;
}

// Skips data sub-blocks up to the zero-length terminator.
bool SkipSubBlocks(Reader& r) {
  while (r.Has(1)) {
    const uint8_t n = r.U8();
    if (n == 0) return true;
    if (!r.Has(n)) return false;
    r.Skip(n);
  }
  return false;
}

// Reads a Graphic Control Extension (after 0x21 0xF9); keeps its transparent index.
bool ReadGraphicControl(Reader& r, GifFrameInfo& info) {
  if (!r.Has(1)) return false;
  const uint8_t size = r.U8();
  if (size == 4 && r.Has(4)) {
    const uint8_t packed = r.U8();
    r.Skip(2);  // delay
    const uint8_t transparent = r.U8();
    info.canvas_index = (packed & 1) ? transparent : 0;
  } else if (r.Has(size)) {
    r.Skip(size);
  }
  return SkipSubBlocks(r);
}

// Header, global table and blocks up to the first image descriptor.
bool ParseFirstFrame(std::string_view data, GifFrameInfo& info) {
  Reader r(data);
  if (!r.Has(13)) return false;
  r.Skip(10);  // signature, screen size
  const uint8_t flags = r.U8();
  r.Skip(2);  // background index, aspect
  if ((flags & 0x80) && !ReadColorTable(r, flags, info)) return false;
  while (r.Has(1)) {
    const uint8_t block = r.U8();
    if (block == 0x21) {
      if (!r.Has(1)) return false;
      const bool ok = r.U8() == 0xF9 ? ReadGraphicControl(r, info) : SkipSubBlocks(r);
      if (!ok) return false;
    } else if (block == 0x2C) {
      if (!r.Has(9)) return false;
      info.left = r.U16();
      info.top = r.U16();
      info.width = r.U16();
      info.height = r.U16();
      const uint8_t local = r.U8();
      return !(local & 0x80) || ReadColorTable(r, local, info);
    } else {
      return false;  // trailer or garbage before any image
    }
  }
  return false;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

}  // namespace

StatusOr<RgbImage> DecodeGifFirstFrame(std::string_view data, std::string_view what) {
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<uint8_t, StbFree> rgba(
      stbi_load_from_memory(reinterpret_cast<const uint8_t*>(data.data()),
                            static_cast<int>(data.size()), &w, &h, &comp, /*desired_channels=*/4));
  if (!rgba) {
    return InvalidImage(what, absl::StrCat("cannot decode gif (", stbi_failure_reason(), ")"));
  }
  GifFrameInfo info;
  if (!ParseFirstFrame(data, info)) {
    return InvalidImage(what, "corrupt gif blocks before the first image");
  }
  RgbImage image{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  const uint8_t* canvas = &info.palette[info.canvas_index * 3];
  for (int y = 0; y < h; ++y) {
    const bool row_in = y >= info.top && y < info.top + info.height;
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      const uint8_t* src = rgba.get() + 4 * i;
      const bool inside = row_in && x >= info.left && x < info.left + info.width;
      // Inside the frame, alpha 0 marks exactly the transparent index (stb gives every other
      // palette entry alpha 255); its colour is the canvas colour, the transparent entry's.
      const uint8_t* color = (inside && src[3] != 0) ? src : canvas;
      for (int c = 0; c < 3; ++c) image.pixels[3 * i + c] = color[c];
    }
  }
  return image;
}

}  // namespace vision_internal
}  // namespace vlmd
