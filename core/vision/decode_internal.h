// Internals of image decoding (decode.cc, jpeg_check.cc, jpeg_decode.cc, gif.cc), exposed for
// tests.
#pragma once

#include <string_view>

#include "core/base/status.h"
#include "core/vision/image.h"

namespace vlmd {
namespace vision_internal {

enum class ImageFormat { kUnknown, kPng, kJpeg, kGif, kBmp };

// INVALID_ARGUMENT "image '<what>': <message>", the form of every decoding error.
Status InvalidImage(std::string_view what, std::string_view message);

// The format from the file signature. stb would also try TGA, PSD, HDR, PIC and PNM (TGA has no
// signature, so random bytes can pass as TGA); we only accept these four.
ImageFormat DetectFormat(std::string_view data);

// Walks the JPEG marker structure (segments, then entropy-coded data up to the next marker) and
// requires an EOI marker, as PIL does ("image file is truncated", even when only EOI is
// missing); stb's own reasons for such data are misleading. INVALID_ARGUMENT naming `what`.
Status CheckJpegComplete(std::string_view data, std::string_view what);

// Uncompressed (BI_RGB / BI_BITFIELDS) BMP whose file ends before the pixel rows do: stb would
// decode the missing rows as black; PIL refuses ("image file is truncated"), and so do we.
Status CheckBmpComplete(std::string_view data, std::string_view what);

// Rescales stb's 16-bit BMP colours to PIL's (see bmp.cc); other BMPs are left alone. Refuses
// 16-bit bitfield layouts PIL refuses.
Status MatchPilBmp16(std::string_view data, std::string_view what, RgbImage& image);

// A JPEG decoded by libjpeg-turbo as PIL decodes it (see jpeg_decode.cc); run
// CheckJpegComplete first (libjpeg pads a truncated file with grey, PIL refuses it).
StatusOr<RgbImage> DecodeJpeg(std::string_view data, std::string_view what);

// The first frame of a GIF as PIL's GifImagePlugin + convert("RGB") give it (see gif.cc).
StatusOr<RgbImage> DecodeGifFirstFrame(std::string_view data, std::string_view what);

}  // namespace vision_internal
}  // namespace vlmd
