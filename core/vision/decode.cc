// Image decoding with stb_image (Debian's libstb, v2.27), converted to RGB the way PIL's
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
//  * JPEG: stb's decoder is not libjpeg-turbo (PIL's): IDCT and chroma upsampling differ, so
//    pixels may differ by a few levels. Truncated JPEGs decode silently in stb; we check the
//    marker structure and refuse them, as PIL does ("image file is truncated").
//  * GIF: first frame only; see gif.cc for transparent pixels.
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
    return InvalidImage(what, absl::StrCat("encoded size of ", data.size(),
                                      " bytes exceeds the limit of ", limits.max_bytes, " bytes"));
  }
  if (data.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidImage(what, absl::StrCat("encoded size of ", data.size(), " bytes is too large"));
  }
  return absl::OkStatus();
}

// Width and height from a PNG's IHDR, read directly so that absurd sizes get our message (stb's
// own header check refuses PNGs over 1 GiB with only "too large").
StatusOr<std::pair<int64_t, int64_t>> PngSize(std::string_view data, std::string_view what) {
  // signature (8) + length (4) + "IHDR" (4) + width (4) + height (4)
  if (data.size() < 24 || std::memcmp(data.data() + 12, "IHDR", 4) != 0) {
    return InvalidImage(what, "corrupt png: no IHDR chunk at the start");
  }
  auto be32 = [&](size_t at) {
    const uint8_t* b = Bytes(data) + at;
    return (int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  };
  return std::make_pair(be32(16), be32(20));
}

}  // namespace

StatusOr<ImageInfo> ProbeImage(std::string_view data, std::string_view what) {
  const ImageFormat format = DetectFormat(data);
  if (format == ImageFormat::kUnknown) {
    return InvalidImage(what, "not a PNG, JPEG, BMP or GIF image (unrecognised signature)");
  }
  ImageInfo info;
  info.format = FormatName(format);
  if (format == ImageFormat::kPng) {
    ASSIGN_OR_RETURN(auto size, PngSize(data, what));
    if (size.first <= 0 || size.second <= 0 || size.first > INT32_MAX ||
        size.second > INT32_MAX) {
      return InvalidImage(what, absl::StrCat("corrupt png: header claims ", size.first, "x",
                                        size.second, " pixels"));
    }
    info.width = static_cast<int>(size.first);
    info.height = static_cast<int>(size.second);
  }
  if (data.size() > static_cast<size_t>(INT32_MAX)) {
    return InvalidImage(what, absl::StrCat("encoded size of ", data.size(), " bytes is too large"));
  }
  const int len = static_cast<int>(data.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(Bytes(data), len, &w, &h, &comp)) {
    if (format == ImageFormat::kPng && std::string_view(stbi_failure_reason()) == "too large") {
      // stb refuses PNG headers of more than 1 GiB of pixels before reading on; the size is
      // known from IHDR, the channels are not (left 0).
      return info;
    }
    return InvalidImage(what, absl::StrCat("corrupt ", info.format, " header (", stbi_failure_reason(),
                                      ")"));
  }
  info.width = w;
  info.height = h;
  info.channels = comp;
  info.is_16_bit = format == ImageFormat::kPng && stbi_is_16_bit_from_memory(Bytes(data), len);
  return info;
}

namespace {

Status CheckPixelLimit(const ImageInfo& info, const DecodeLimits& limits, std::string_view what) {
  const int64_t pixels = static_cast<int64_t>(info.width) * info.height;
  if (limits.max_pixels > 0 && pixels > limits.max_pixels) {
    return InvalidImage(what, absl::StrCat(info.format, " of ", info.width, "x", info.height, " (",
                                      pixels, " pixels) exceeds the limit of ", limits.max_pixels,
                                      " pixels"));
  }
  if (info.channels == 0) {
    return InvalidImage(what, absl::StrCat(info.format, " of ", info.width, "x", info.height,
                                      " is too large to decode (", stbi_failure_reason(), ")"));
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

StatusOr<RgbImage> DecodeRgb8(std::string_view data, const ImageInfo& info,
                              std::string_view what) {
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<uint8_t, StbFree> rgb(stbi_load_from_memory(
      Bytes(data), static_cast<int>(data.size()), &w, &h, &comp, /*desired_channels=*/3));
  if (!rgb) {
    return InvalidImage(what,
                   absl::StrCat("cannot decode ", info.format, " (", stbi_failure_reason(), ")"));
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
  if (info.format == "jpeg") RETURN_IF_ERROR(vision_internal::CheckJpegComplete(data, what));
  if (info.format == "gif") return vision_internal::DecodeGifFirstFrame(data, what);
  if (info.is_16_bit && info.channels == 1) return DecodeGrey16(data, what);
  return DecodeRgb8(data, info, what);
}

}  // namespace vlmd
