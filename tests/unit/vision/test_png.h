// Test helpers: a minimal PNG encoder (stored deflate blocks) so that tests can build PNGs of any
// colour type and bit depth, with extra chunks, from bytes they write themselves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlmd {
namespace vision_testing {

struct PngSpec {
  int width = 0;
  int height = 0;
  int bit_depth = 8;
  int color_type = 2;  // 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
  // Packed samples, row by row, without the filter byte (big-endian for 16-bit samples).
  std::vector<uint8_t> rows;
  // (type, payload) chunks written between IHDR and IDAT (PLTE, tRNS, gAMA, iCCP, ...).
  std::vector<std::pair<std::string, std::string>> chunks;
};

// CRC-32 as PNG chunks use it.
uint32_t Crc32(std::string_view data);
// One chunk: length, type, payload, CRC.
std::string PngChunk(std::string_view type, std::string_view payload);
// The IHDR chunk payload.
std::string IhdrPayload(uint32_t width, uint32_t height, int bit_depth, int color_type);
// A whole PNG file.
std::string EncodePng(const PngSpec& spec);
// Reads a file of the source tree (relative to VLMD_SOURCE_DIR); empty if missing.
std::string ReadSourceFile(const std::string& relative_path);

}  // namespace vision_testing
}  // namespace vlmd
