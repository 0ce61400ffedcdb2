// Truncation check for JPEG data (see decode_internal.h).

#include <cstdint>
#include <string_view>

#include "core/vision/decode_internal.h"

namespace vlmd {
namespace vision_internal {
namespace {

constexpr uint8_t kSos = 0xDA;
constexpr uint8_t kEoi = 0xD9;

bool IsStandalone(uint8_t marker) {
  return marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7);  // TEM, RST0..7
}

Status Truncated(std::string_view what, size_t offset) {
  return InvalidImage(what, absl::StrCat("jpeg is truncated (data ends at byte ", offset,
                                         " before the EOI marker)"));
}

// Skips entropy-coded data from `pos`: stops at a 0xFF that starts a marker (not a stuffed
// 0xFF00, a restart marker or fill bytes). Returns the position of that 0xFF, or data.size().
size_t SkipEntropyData(std::string_view data, size_t pos) {
  const auto* b = reinterpret_cast<const uint8_t*>(data.data());
  for (; pos + 1 < data.size(); ++pos) {
    if (b[pos] != 0xFF) continue;
    const uint8_t next = b[pos + 1];
    if (next == 0x00 || next == 0xFF || (next >= 0xD0 && next <= 0xD7)) continue;
    return pos;
  }
  return data.size();
}

}  // namespace

Status CheckJpegComplete(std::string_view data, std::string_view what) {
  const auto* b = reinterpret_cast<const uint8_t*>(data.data());
  const size_t n = data.size();
  size_t pos = 2;  // after SOI
  while (true) {
    while (pos < n && b[pos] != 0xFF) ++pos;  // libjpeg skips extraneous bytes, with a warning
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return Truncated(what, n);
    const uint8_t marker = b[pos++];
    if (marker == kEoi) return absl::OkStatus();
    if (IsStandalone(marker) || marker == 0x00) continue;
    if (pos + 2 > n) return Truncated(what, n);
    const size_t length = (size_t{b[pos]} << 8) | b[pos + 1];
    if (length < 2) {
      return InvalidImage(
          what, absl::StrCat("corrupt jpeg (segment length ", length, " at byte ", pos, ")"));
    }
    pos += length;
    if (pos > n) return Truncated(what, n);
    if (marker == kSos) pos = SkipEntropyData(data, pos);
  }
}

}  // namespace vision_internal
}  // namespace vlmd
