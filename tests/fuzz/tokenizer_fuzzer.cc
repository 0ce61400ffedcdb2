// The Qwen2 tokenizer (the real vocabulary, third_party/tokenizer/tokenizer.json) on arbitrary
// text. Properties: for valid UTF-8, Decode(Encode(s)) == NFC(s) (byte-level BPE is lossless
// after the normalizer); for any bytes, Encode never fails, every id is in the vocabulary, the
// decoded text is valid UTF-8, and the incremental (streaming) decoder produces the same text.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/text/tokenizer.h"
#include "core/text/utf8.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::shared_ptr<const vlmd::Tokenizer> LoadTokenizer() {
  const char* env = std::getenv("VLMD_TOKENIZER");
  std::string path = env && *env ? env : VLMD_SOURCE_DIR "/third_party/tokenizer/tokenizer.json";
  auto tokenizer = vlmd::Tokenizer::FromFile(path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "cannot load %s (run scripts/setup.sh): %s\n", path.c_str(),
                 std::string(tokenizer.status().message()).c_str());
    std::abort();
  }
  return *tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  static const std::shared_ptr<const Tokenizer> tokenizer = LoadTokenizer();
  if (size > 4096) return 0;  // BPE is quadratic in a word's length; keep iterations short
  std::string_view text = fuzz::AsView(data, size);
  std::vector<int32_t> ids = tokenizer->Encode(text);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tokenizer->Size());
  std::string decoded = tokenizer->Decode(ids, /*skip_special_tokens=*/false);
  FUZZ_CHECK(text::IsValidUtf8(decoded));
  std::string expected = text::IsValidUtf8(text) ? std::string(text) : text::Utf8Lossy(text);
  expected = text::Normalize(expected, text::NormalForm::kNFC);
  if (decoded != expected) {
    std::fprintf(stderr, "round trip: %zu bytes in, %zu ids, %zu bytes out (expected %zu)\n",
                 text.size(), ids.size(), decoded.size(), expected.size());
    FUZZ_CHECK(decoded == expected);
  }
  IncrementalDecoder stream(tokenizer, /*skip_special_tokens=*/false);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.Add(id);
  streamed += stream.Flush();
  FUZZ_CHECK(streamed == decoded);
  // Any id sequence (the bytes read as ids) decodes to valid UTF-8 without failing.
  std::vector<int32_t> raw(size / 4);
  for (size_t i = 0; i < raw.size(); ++i) std::memcpy(&raw[i], data + 4 * i, 4);
  FUZZ_CHECK(text::IsValidUtf8(tokenizer->Decode(raw, true)));
  return 0;
}
