// Image decoding with stb_image (Debian's libstb, v2.27) for PNG, BMP and GIF and libjpeg-turbo
// for JPEG (jpeg_decode.cc), converted to RGB the way PIL's
// convert("RGB") does it after Image.open: alpha dropped (not composited), grey replicated,
// palettes expanded. Limits are checked on the header before any pixel is decoded.
//
// Where stb and PIL differ, and what is done about it:
//  * 16-bit grey PNG: PIL opens it as mode I;16 (Pillow >= 10.3; mode I before) and
//    convert("RGB") saturates each sample to 0..255 (Convert.c I16_RGB / i2rgb), it does not take
//    the high byte. We decode 16-bit samples and saturate the same way.
//  * 16-bit RGB, RGBA and grey+alpha PNG: PIL's rawmodes RGB;16B, RGBA;16B and LA;16B keep the
//    high byte, as stb's 16-to-8 conversion does. Identical.
//  * PNG gAMA/cHRM/sRGB/iCCP chunks: ignored by both (no colour management on load).
//  * Palette or grey/RGB PNG with tRNS: stb adds an alpha channel that we drop; PIL keeps the
//    palette colour (transparency only lives in info). Identical RGB.
//  * JPEG: decoded by libjpeg-turbo, PIL's library (jpeg_decode.cc): the same bytes. PIL refuses
//    a JPEG without EOI ("image file is truncated") where libjpeg would pad it with grey; we
//    walk the marker structure first (jpeg_check.cc) and say "truncated".
//  * GIF: first frame only; see gif.cc for transparent pixels.
//  * BMP: 16-bit colours are scaled differently (see bmp.cc, corrected); RLE-compressed BMPs,
//    which PIL reads, are refused by stb ("BMP RLE").
//  * EXIF orientation is ignored, as by the processor (transformers' load_image() would apply
//    exif_transpose before the processor sees the image).

#include <stb_image.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/vision/decode_internal.h"
#include "core/vision/image.h"

namespace vlmd {
namespace vision_internal {

ImageFormat DetectFormat(std::string_view data) {
  auto starts = [&](std::string_view magic) {
    return data.size() >= magic.size() && data.substr(0, magic.size()) == magic;
  };
  if (starts("\x89PNG\r\n\x1a\n")) return ImageFormat::kPng;
  if (starts("\xff\xd8\xff")) return ImageFormat::kJpeg;
  if (starts("GIF87a") || starts("GIF89a")) return ImageFormat::kGif;
  if (starts("BM")) return ImageFormat::kBmp;
  return ImageFormat::kUnknown;
}

Status InvalidImage(std::string_view what, std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("image '", std::string(what), "': ", std::string(message)));
}

}  // namespace vision_internal

namespace {

using vision_internal::InvalidImage;

using vision_internal::DetectFormat;
using vision_internal::ImageFormat;

const uint8_t* Bytes(std::string_view data) {
  return reinterpret_cast<const uint8_t*>(data.data());
}

std::string FormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kGif:
      return "gif";
    case ImageFormat::kBmp:
      return "bmp";
    default:
      return "unknown";
  }
}

Status CheckByteLimit(std::string_view data, const DecodeLimits& limits, std::string_view what) {
  if (limits.max_bytes > 0 && static_cast<int64_t>(data.size()) > limits.max_bytes) {
    return InvalidImage(
        what, absl::StrCat("encoded size of ", data.size(), " bytes exceeds the limit of ",
                           limits.max_bytes, " bytes"));
  }
  if (data.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidImage(what, absl::StrCat("encoded size of ", data.size(), " bytes is too large"));
  }
  return absl::OkStatus();
}

// The PNG header, read directly: stb's own header check refuses PNGs of more than 1 GiB of
// pixels, and stbi_info then reports the last format it tried ("unknown image type"), so a bomb
// would not get a message naming its size.
Status ReadPngHeader(std::string_view data, std::string_view what, ImageInfo& info) {
  // signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), depth (1), colour type (1)
  if (data.size() < 26 || std::memcmp(data.data() + 12, "IHDR", 4) != 0) {
    return InvalidImage(what, "corrupt or truncated png header (no IHDR chunk)");
  }
  auto be32 = [&](size_t at) {
    const uint8_t* b = Bytes(data) + at;
    return (int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  };
  const int64_t width = be32(16), height = be32(20);
  const int depth = Bytes(data)[24], color_type = Bytes(data)[25];
  static constexpr int kChannels[7] = {1, 0, 3, 3, 2, 0, 4};  // by colour type; 0 = invalid
  if (width <= 0 || height <= 0 || width > INT32_MAX || height > INT32_MAX || color_type > 6 ||
      kChannels[color_type] == 0 || depth == 0 || depth > 16 || (depth & (depth - 1)) != 0) {
    return InvalidImage(what, absl::StrCat("corrupt png header (", width, "x", height, ", depth ",
                                           depth, ", colour type ", color_type, ")"));
  }
  info.width = static_cast<int>(width);
  info.height = static_cast<int>(height);
  info.channels = kChannels[color_type];
  info.is_16_bit = depth == 16;
  return absl::OkStatus();
}

}  // namespace

StatusOr<ImageInfo> ProbeImage(std::string_view data, std::string_view what) {
  const ImageFormat format = DetectFormat(data);
  if (format == ImageFormat::kUnknown) {
    return InvalidImage(what, "not a PNG, JPEG, BMP or GIF image (unrecognised signature)");
  }
  if (data.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidImage(what, absl::StrCat("encoded size of ", data.size(), " bytes is too large"));
  }
  ImageInfo info;
  info.format = FormatName(format);
  if (format == ImageFormat::kPng) RETURN_IF_ERROR(ReadPngHeader(data, what, info));
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(Bytes(data), static_cast<int>(data.size()), &w, &h, &comp)) {
    info.width = w;
    info.height = h;
    info.channels = comp;  // palette PNGs: 3, or 4 with tRNS
  } else if (format != ImageFormat::kPng) {
    // stb's reason is that of the last format it tried, so name ours in front of it.
    return InvalidImage(what, absl::StrCat("corrupt or truncated ", info.format,
                                           " header (stb: ", stbi_failure_reason(), ")"));
  }
  // stb reports a BMP or GIF of width or height 0 as a valid image: one with no pixels.
  if (info.width <= 0 || info.height <= 0) {
    return InvalidImage(what, absl::StrCat(info.format, " of ", info.width, "x", info.height,
                                           " has no pixels"));
  }
  // A PNG that stb cannot read past IHDR keeps IHDR's values; decoding will say why.
  return info;
}

namespace {

Status CheckPixelLimit(const ImageInfo& info, const DecodeLimits& limits, std::string_view what) {
  const int64_t pixels = static_cast<int64_t>(info.width) * info.height;
  if (limits.max_pixels > 0 && pixels > limits.max_pixels) {
    return InvalidImage(
        what, absl::StrCat(info.format, " of ", info.width, "x", info.height, " (", pixels,
                           " pixels) exceeds the limit of ", limits.max_pixels, " pixels"));
  }
  return absl::OkStatus();
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// 16-bit grey PNG: samples saturated to 0..255 and replicated, as PIL's I;16 -> RGB.
StatusOr<RgbImage> DecodeGrey16(std::string_view data, std::string_view what) {
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<uint16_t, StbFree> grey(stbi_load_16_from_memory(
      Bytes(data), static_cast<int>(data.size()), &w, &h, &comp, /*desired_channels=*/1));
  if (!grey) {
    return InvalidImage(what, absl::StrCat("cannot decode png (", stbi_failure_reason(), ")"));
  }
  RgbImage image{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  const size_t n = static_cast<size_t>(w) * h;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t v = grey.get()[i];
    const uint8_t s = v > 255 ? 255 : static_cast<uint8_t>(v);
    image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = s;
  }
  return image;
}

StatusOr<RgbImage> DecodeRgb8(std::string_view data, const ImageInfo& info, std::string_view what) {
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<uint8_t, StbFree> rgb(stbi_load_from_memory(
      Bytes(data), static_cast<int>(data.size()), &w, &h, &comp, /*desired_channels=*/3));
  if (!rgb) {
    return InvalidImage(
        what, absl::StrCat("cannot decode ", info.format, " (", stbi_failure_reason(), ")"));
  }
  const size_t bytes = static_cast<size_t>(w) * h * 3;
  return RgbImage{w, h, std::vector<uint8_t>(rgb.get(), rgb.get() + bytes)};
}

}  // namespace

StatusOr<RgbImage> DecodeImage(std::string_view data, const DecodeLimits& limits,
                               std::string_view what) {
  RETURN_IF_ERROR(CheckByteLimit(data, limits, what));
  ASSIGN_OR_RETURN(const ImageInfo info, ProbeImage(data, what));
  RETURN_IF_ERROR(CheckPixelLimit(info, limits, what));
  if (info.format == "jpeg") {
    RETURN_IF_ERROR(vision_internal::CheckJpegComplete(data, what));
    return vision_internal::DecodeJpeg(data, what);
  }
  if (info.format == "gif") return vision_internal::DecodeGifFirstFrame(data, what);
  if (info.format == "bmp") RETURN_IF_ERROR(vision_internal::CheckBmpComplete(data, what));
  if (info.is_16_bit && info.channels == 1) return DecodeGrey16(data, what);
  ASSIGN_OR_RETURN(RgbImage image, DecodeRgb8(data, info, what));
  if (info.format == "bmp") RETURN_IF_ERROR(vision_internal::MatchPilBmp16(data, what, image));
  return image;
}

}  // namespace vlmd
