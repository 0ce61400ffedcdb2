#include "tests/unit/vision/test_png.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace vlmd {
namespace vision_testing {
namespace {

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

uint32_t Adler32(std::string_view data) {
  uint32_t a = 1, b = 0;
  for (unsigned char c : data) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

// zlib stream of stored (uncompressed) deflate blocks.
std::string ZlibStored(std::string_view data) {
  std::string out = "\x78\x01";
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, data.size() - pos);
    const bool last = pos + n == data.size();
    out += static_cast<char>(last ? 1 : 0);
    out += static_cast<char>(n & 0xFF);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xFF);
    out += static_cast<char>((~n >> 8) & 0xFF);
    out.append(data.substr(pos, n));
    pos += n;
  } while (pos < data.size());
  return out + Be32(Adler32(data));
}

int BitsPerPixel(int bit_depth, int color_type) {
  const int samples[] = {1, 0, 3, 1, 2, 0, 4};
  return bit_depth * samples[color_type];
}

}  // namespace

uint32_t Crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string PngChunk(std::string_view type, std::string_view payload) {
  std::string body = std::string(type) + std::string(payload);
  return Be32(static_cast<uint32_t>(payload.size())) + body + Be32(Crc32(body));
}

std::string IhdrPayload(uint32_t width, uint32_t height, int bit_depth, int color_type) {
  return Be32(width) + Be32(height) + static_cast<char>(bit_depth) + static_cast<char>(color_type) +
         std::string(3, '\0');
}

std::string EncodePng(const PngSpec& spec) {
  const size_t row_bytes =
      (static_cast<size_t>(spec.width) * BitsPerPixel(spec.bit_depth, spec.color_type) + 7) / 8;
  std::string raw;
  for (int y = 0; y < spec.height; ++y) {
    raw += '\0';  // filter: none
    raw.append(reinterpret_cast<const char*>(spec.rows.data()) + y * row_bytes, row_bytes);
  }
  std::string png = "\x89PNG\r\n\x1a\n";
  png += PngChunk("IHDR", IhdrPayload(spec.width, spec.height, spec.bit_depth, spec.color_type));
  for (const auto& [type, payload] : spec.chunks) png += PngChunk(type, payload);
  png += PngChunk("IDAT", ZlibStored(raw));
  png += PngChunk("IEND", "");
  return png;
}

std::string ReadSourceFile(const std::string& relative_path) {
  std::ifstream in(std::string(VLMD_SOURCE_DIR) + "/" + relative_path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace vision_testing
}  // namespace vlmd
