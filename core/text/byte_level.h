// GPT-2's reversible map between bytes and printable characters ("bytes_to_unicode"), used by
// the ByteLevel pre-tokenizer (bytes -> characters) and the ByteLevel decoder (back to bytes).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vlmd::text {

// Immutable table; Get() is thread-safe.
class ByteLevelMap {
 public:
  static const ByteLevelMap& Get();

  // The UTF-8 form of the character standing for byte `b`.
  std::string_view CharFor(uint8_t b) const { return chars_[b]; }
  // Maps every byte of `bytes` to its character.
  std::string Encode(std::string_view bytes) const;
  // The bytes a token stands for when every character of it is a byte-level character; nullopt
  // otherwise (HF's decoder then keeps the token's own UTF-8 bytes).
  std::optional<std::string> Decode(std::string_view token) const;

 private:
  ByteLevelMap();
  static constexpr char32_t kMaxChar = 0x143;  // 256 + 67 remapped bytes
  std::array<std::string, 256> chars_;
  std::array<int16_t, kMaxChar + 1> byte_of_char_;  // -1 when not a byte-level character
};

}  // namespace vlmd::text
