// 16-bit BMPs as PIL decodes them. PIL's unpackers (BGR;15, BGR;16) scale a 5-bit channel as
// v * 255 / 31 and the 6-bit green of 5-6-5 as v * 255 / 63, truncating; stb replicates the bits
// ((v << 3) | (v >> 2), (v << 2) | (v >> 4)), which is 1 level higher for about half the values.
// Bit replication is injective, so stb's byte gives v back (s >> 3, s >> 2) and we rescale it.
// Other BMP depths decode identically in both.

#include <cstdint>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "core/vision/decode_internal.h"

namespace vlmd {
namespace vision_internal {
namespace {

uint32_t Le(std::string_view data, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data[at + i]);
  return v;
}

uint8_t Rescale5(uint8_t s) { return static_cast<uint8_t>((s >> 3) * 255 / 31); }
uint8_t Rescale6(uint8_t s) { return static_cast<uint8_t>((s >> 2) * 255 / 63); }

}  // namespace

Status CheckBmpComplete(std::string_view data, std::string_view what) {
  // offset of the pixels (4) at 10; BITMAPINFOHEADER: width (4) at 18, height (4) at 22,
  // bit count (2) at 28, compression (4) at 30.
  if (data.size() < 34 || Le(data, 14, 4) < 40) return absl::OkStatus();  // stb judges the rest
  const uint32_t compression = Le(data, 30, 4);
  if (compression != 0 && compression != 3) return absl::OkStatus();
  const int64_t width = static_cast<int32_t>(Le(data, 18, 4));
  const int64_t height = static_cast<int32_t>(Le(data, 22, 4));
  const int64_t bits = Le(data, 28, 2);
  const int64_t stride = (width * bits + 31) / 32 * 4;
  const int64_t need = int64_t{Le(data, 10, 4)} + stride * (height < 0 ? -height : height);
  if (width > 0 && static_cast<int64_t>(data.size()) < need) {
    return InvalidImage(what, absl::StrCat("truncated bmp: ", data.size(), " of ", need,
                                           " bytes (pixel rows missing)"));
  }
  return absl::OkStatus();
}

Status MatchPilBmp16(std::string_view data, std::string_view what, RgbImage& image) {
  // file header (14), info header size (4) at 14, bit count (2) at 28, compression (4) at 30;
  // BI_BITFIELDS masks at 54 (inside a V2+ header, or right after a 40-byte one).
  if (data.size() < 34 || Le(data, 14, 4) < 40 || Le(data, 28, 2) != 16) return absl::OkStatus();
  const uint32_t compression = Le(data, 30, 4);
  bool green6 = false;
  if (compression == 3) {  // BI_BITFIELDS
    if (data.size() < 66) return InvalidImage(what, "truncated bmp header (bitfield masks)");
    const uint32_t r = Le(data, 54, 4), g = Le(data, 58, 4), b = Le(data, 62, 4);
    green6 = r == 0xF800 && g == 0x7E0 && b == 0x1F;
    if (!green6 && !(r == 0x7C00 && g == 0x3E0 && b == 0x1F)) {
      return InvalidImage(what,
                          "16-bit bmp with a bitfields layout other than 5-5-5 or 5-6-5 "
                          "(PIL refuses it too)");
    }
  } else if (compression != 0) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = Rescale5(image.pixels[i]);
    image.pixels[i + 1] = green6 ? Rescale6(image.pixels[i + 1]) : Rescale5(image.pixels[i + 1]);
    image.pixels[i + 2] = Rescale5(image.pixels[i + 2]);
  }
  return absl::OkStatus();
}

}  // namespace vision_internal
}  // namespace vlmd
