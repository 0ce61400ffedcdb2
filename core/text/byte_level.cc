#include "core/text/byte_level.h"

#include "core/text/utf8.h"

namespace vlmd::text {
namespace {

// Printable bytes keep their own code point; the others are moved to 256, 257, ... in order.
bool KeepsItsCodePoint(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

ByteLevelMap::ByteLevelMap() {
  byte_of_char_.fill(-1);
  char32_t next_moved = 256;
  for (int b = 0; b < 256; ++b) {
    char32_t cp = KeepsItsCodePoint(b) ? static_cast<char32_t>(b) : next_moved++;
    AppendUtf8(cp, &chars_[b]);
    byte_of_char_[cp] = static_cast<int16_t>(b);
  }
}

const ByteLevelMap& ByteLevelMap::Get() {
  static const ByteLevelMap* const kMap = new ByteLevelMap();
  return *kMap;
}

std::string ByteLevelMap::Encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out.append(chars_[static_cast<uint8_t>(c)]);
  return out;
}

// `token` is valid UTF-8: it comes from a parsed JSON file.
std::optional<std::string> ByteLevelMap::Decode(std::string_view token) const {
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    char32_t cp = NextCodePoint(token, &pos);
    if (cp > kMaxChar || byte_of_char_[cp] < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(byte_of_char_[cp]));
  }
  return bytes;
}

}  // namespace vlmd::text
