// Decoding: PIL convert("RGB") rules on PNGs built here, PIL's own output on the fixtures of
// tests/reference/make_vision_unit_fixtures.py, limits checked before decoding, truncated and
// corrupt data.

#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "core/vision/decode_internal.h"
#include "core/vision/image.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/vision/test_png.h"

namespace vlmd {
namespace {

using vision_testing::EncodePng;
using vision_testing::PngSpec;
using vision_testing::ReadSourceFile;

constexpr char kUnitDir[] = "tests/fixtures/images/unit/";

RgbImage MustDecode(const std::string& data, const std::string& what = "test image") {
  auto image = DecodeImage(data, DecodeLimits{}, what);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *std::move(image) : RgbImage{};
}

std::vector<uint8_t> Bytes(std::initializer_list<int> v) { return {v.begin(), v.end()}; }

void ExpectInvalid(const StatusOr<RgbImage>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status();
}

TEST(DecodeTest, GreyIsReplicated) {
  RgbImage im = MustDecode(EncodePng({2, 1, 8, 0, Bytes({7, 200})}));
  EXPECT_EQ(im.pixels, Bytes({7, 7, 7, 200, 200, 200}));
}

TEST(DecodeTest, LowBitDepthGreyIsScaled) {
  // 2-bit samples 0..3 -> 0, 85, 170, 255 (PIL's L;2 and stb agree); packed MSB first.
  RgbImage im = MustDecode(EncodePng({4, 1, 2, 0, Bytes({0b00011011})}));
  EXPECT_EQ(im.pixels, Bytes({0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));
}

TEST(DecodeTest, AlphaIsDroppedNotComposited) {
  RgbImage la = MustDecode(EncodePng({1, 1, 8, 4, Bytes({90, 0})}));
  EXPECT_EQ(la.pixels, Bytes({90, 90, 90}));
  RgbImage rgba = MustDecode(EncodePng({2, 1, 8, 6, Bytes({10, 20, 30, 0, 40, 50, 60, 128})}));
  EXPECT_EQ(rgba.pixels, Bytes({10, 20, 30, 40, 50, 60}));
}

TEST(DecodeTest, PaletteIsExpandedIgnoringTransparency) {
  PngSpec spec{3, 1, 8, 3, Bytes({2, 0, 1})};
  spec.chunks = {{"PLTE", std::string("\x01\x02\x03\x0a\x0b\x0c\xfa\xfb\xfc", 9)},
                 {"tRNS", std::string("\x00\x80", 2)}};
  RgbImage im = MustDecode(EncodePng(spec));
  EXPECT_EQ(im.pixels, Bytes({250, 251, 252, 1, 2, 3, 10, 11, 12}));
}

TEST(DecodeTest, SixteenBitGreySaturatesLikePil) {
  // PIL: I;16 (or I before Pillow 10.3) -> RGB clips to 255; it does not take the high byte.
  PngSpec spec{4, 1, 16, 0, Bytes({0x00, 0x64, 0x00, 0xFF, 0x01, 0x00, 0xFF, 0xFF})};
  RgbImage im = MustDecode(EncodePng(spec));
  EXPECT_EQ(im.pixels, Bytes({100, 100, 100, 255, 255, 255, 255, 255, 255, 255, 255, 255}));
}

TEST(DecodeTest, SixteenBitColourKeepsHighByte) {
  RgbImage rgb = MustDecode(EncodePng({1, 1, 16, 2, Bytes({0x12, 0xFF, 0x80, 0x01, 0x00, 0xFF})}));
  EXPECT_EQ(rgb.pixels, Bytes({0x12, 0x80, 0x00}));
  RgbImage la = MustDecode(EncodePng({1, 1, 16, 4, Bytes({0xAB, 0xCD, 0x00, 0x00})}));
  EXPECT_EQ(la.pixels, Bytes({0xAB, 0xAB, 0xAB}));
}

TEST(DecodeTest, GammaAndIccChunksAreIgnored) {
  PngSpec plain{2, 1, 8, 2, Bytes({10, 100, 200, 30, 60, 90})};
  PngSpec tagged = plain;
  tagged.chunks = {{"gAMA", std::string("\x00\x01\x86\xa0", 4)},  // gamma 1.0
                   {"sRGB", std::string("\x00", 1)}};
  EXPECT_EQ(MustDecode(EncodePng(tagged)).pixels, MustDecode(EncodePng(plain)).pixels);
}

TEST(DecodeTest, ProbeReadsTheHeader) {
  auto info = ProbeImage(EncodePng({3, 2, 16, 0, std::vector<uint8_t>(12)}), "probe");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->format, "png");
  EXPECT_EQ(info->width, 3);
  EXPECT_EQ(info->height, 2);
  EXPECT_EQ(info->channels, 1);
  EXPECT_TRUE(info->is_16_bit);
  PngSpec pal{1, 1, 8, 3, Bytes({0})};
  pal.chunks = {{"PLTE", std::string(3, '\x07')}, {"tRNS", std::string(1, '\x00')}};
  info = ProbeImage(EncodePng(pal), "probe");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->channels, 4);  // stb reports palette + tRNS as RGBA
}

// Every file of decode_cases.json against what PIL 9.4 gave after convert("RGB").
TEST(DecodeTest, MatchesPilOnFixtures) {
  const std::string text = ReadSourceFile(std::string(kUnitDir) + "decode_cases.json");
  ASSERT_FALSE(text.empty()) << "missing " << kUnitDir << "decode_cases.json";
  const auto doc = nlohmann::json::parse(text);
  for (const auto& c : doc.at("cases")) {
    const std::string input = c.at("input").get<std::string>();
    SCOPED_TRACE(input + " (PIL mode " + c.at("pil_mode").get<std::string>() + ")");
    const RgbImage ours = MustDecode(ReadSourceFile(kUnitDir + input), input);
    const RgbImage pil = MustDecode(ReadSourceFile(kUnitDir + c.at("expected").get<std::string>()));
    ASSERT_EQ(ours.width, pil.width);
    ASSERT_EQ(ours.height, pil.height);
    // Every format byte for byte, JPEG included (libjpeg-turbo, as PIL; the "exact" flag of
    // the fixture predates that and is false for JPEG).
    EXPECT_EQ(ours.pixels, pil.pixels);
  }
}

// A header claiming 100000 x 100000 pixels is refused from the header alone, at once.
TEST(DecodeTest, DecompressionBombIsRefusedFromTheHeader) {
  std::string png = "\x89PNG\r\n\x1a\n";
  png += vision_testing::PngChunk("IHDR", vision_testing::IhdrPayload(100000, 100000, 8, 2));
  png += vision_testing::PngChunk("IDAT", std::string("\x78\x01\x01\x00\x00\xff\xff", 7));
  const auto start = std::chrono::steady_clock::now();
  auto r = DecodeImage(png, DecodeLimits{}, "bomb.png");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ExpectInvalid(r, "100000x100000");
  EXPECT_NE(r.status().message().find("bomb.png"), std::string::npos);
  EXPECT_NE(r.status().message().find("50000000"), std::string::npos);
  EXPECT_LT(ms, 50.0);
  auto info = ProbeImage(png, "bomb.png");  // the size is still reported
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->width, 100000);
}

TEST(DecodeTest, JpegAndGifHeadersAreCheckedToo) {
  // SOI + SOF0 for 60000 x 60000, 3 components: stb reads the size, our limit refuses.
  std::string jpeg(
      "\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03"
      "\x01\x22\x00\x02\x11\x01\x03\x11\x01",
      21);
  ExpectInvalid(DecodeImage(jpeg, DecodeLimits{}, "big.jpg"), "60000x60000");
  std::string gif("GIF89a\xff\xff\xff\xff\x00\x00\x00", 13);
  ExpectInvalid(DecodeImage(gif, DecodeLimits{}, "big.gif"), "65535x65535");
}

// Found by tests/fuzz/image_fuzzer.cc: stb reports a BMP of width 0 as a valid image, and
// DecodeImage returned a 0 x 1174016 image with no pixels.
TEST(DecodeTest, ZeroWidthImageIsInvalid) {
  const std::string bmp(
      "BM\x82\0\0\0\0\0\0\0>\0\0\0(\0\0\0\0\0\0\0\0\xea\x11\0\x01\0\x01\0"
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xaa\xaa\x12\0",
      50);
  ExpectInvalid(DecodeImage(bmp, DecodeLimits{}, "empty.bmp"), "has no pixels");
  EXPECT_FALSE(ProbeImage(bmp, "empty.bmp").ok());
}

// Found by the bad-input catalogue: a BMP cut after its header decoded as a black image.
TEST(DecodeTest, BmpWithoutItsPixelRowsIsTruncated) {
  std::string bmp = ReadSourceFile(std::string(kUnitDir) + "bmp_rgb24.bmp");
  ASSERT_GT(bmp.size(), 60u);
  EXPECT_TRUE(DecodeImage(bmp, DecodeLimits{}, "full.bmp").ok());
  for (size_t cut : {size_t{54}, size_t{100}, bmp.size() - 1}) {
    ExpectInvalid(DecodeImage(bmp.substr(0, cut), DecodeLimits{}, "cut.bmp"), "truncated bmp");
  }
}

// PIL reads 16-bit BMPs only as 5-5-5 or 5-6-5 and refuses other bitfield layouts; so do we.
TEST(DecodeTest, OddSixteenBitBmpLayoutIsRefused) {
  std::string bmp = ReadSourceFile(std::string(kUnitDir) + "bmp16_565.bmp");
  ASSERT_GT(bmp.size(), 66u);
  EXPECT_TRUE(DecodeImage(bmp, DecodeLimits{}, "565.bmp").ok());
  bmp[54] = 0x00;  // red mask 0xF800 -> 0xF000
  bmp[55] = static_cast<char>(0xF0);
  ExpectInvalid(DecodeImage(bmp, DecodeLimits{}, "odd.bmp"), "bitfields layout");
}

TEST(DecodeTest, ByteAndPixelLimits) {
  const std::string png = EncodePng({4, 4, 8, 0, std::vector<uint8_t>(16, 1)});
  ExpectInvalid(DecodeImage(png, DecodeLimits{10, 0}, "x.png"), "exceeds the limit of 10 bytes");
  ExpectInvalid(DecodeImage(png, DecodeLimits{0, 15}, "x.png"), "limit of 15 pixels");
  EXPECT_TRUE(DecodeImage(png, DecodeLimits{0, 16}, "x.png").ok());
}

TEST(DecodeTest, TruncatedPngIsInvalid) {
  const std::string png = EncodePng({16, 16, 8, 2, std::vector<uint8_t>(16 * 16 * 3, 9)});
  for (size_t keep : {size_t{10}, size_t{30}, size_t{60}, png.size() / 2, png.size() - 12}) {
    SCOPED_TRACE(keep);
    auto r = DecodeImage(png.substr(0, keep), DecodeLimits{}, "cut.png");
    ExpectInvalid(r, "cut.png");
  }
}

TEST(DecodeTest, TruncatedJpegIsInvalid) {
  const std::string jpeg = ReadSourceFile(std::string(kUnitDir) + "jpeg_420.jpg");
  ASSERT_FALSE(jpeg.empty());
  EXPECT_TRUE(DecodeImage(jpeg, DecodeLimits{}, "ok.jpg").ok());
  for (size_t cut : {size_t{1}, size_t{2}, size_t{100}, jpeg.size() / 2, jpeg.size() - 100}) {
    SCOPED_TRACE(cut);
    ExpectInvalid(DecodeImage(jpeg.substr(0, jpeg.size() - cut), DecodeLimits{}, "cut.jpg"),
                  "truncated");
  }
  const std::string progressive = ReadSourceFile(std::string(kUnitDir) + "jpeg_progressive.jpg");
  ExpectInvalid(
      DecodeImage(progressive.substr(0, progressive.size() * 2 / 3), DecodeLimits{}, "cut.jpg"),
      "truncated");
}

TEST(DecodeTest, TrailingBytesAfterJpegEoiAreAccepted) {
  const std::string jpeg = ReadSourceFile(std::string(kUnitDir) + "jpeg_grey.jpg");
  EXPECT_TRUE(DecodeImage(jpeg + std::string(16, '\0'), DecodeLimits{}, "pad.jpg").ok());
}

TEST(DecodeTest, UnknownOrCorruptDataIsInvalid) {
  ExpectInvalid(DecodeImage("", DecodeLimits{}, "empty"), "unrecognised signature");
  ExpectInvalid(DecodeImage("hello world, not an image", DecodeLimits{}, "text.txt"), "text.txt");
  // A valid TGA-like blob would pass stb's own sniffing; we accept only the four formats.
  ExpectInvalid(DecodeImage(std::string("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
                                        "\x00\x01\x00\x18\x00\x01\x02\x03",
                                        21),
                            DecodeLimits{}, "x.tga"),
                "unrecognised signature");
  std::string png = EncodePng({8, 8, 8, 2, std::vector<uint8_t>(8 * 8 * 3, 5)});
  png[png.size() - 20] ^= 0x55;  // inside the zlib stream / Adler-32
  auto r = DecodeImage(png, DecodeLimits{}, "bad.png");
  if (!r.ok()) EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// Random byte flips and cuts of every fixture input: each result is an image of the header's
// size or INVALID_ARGUMENT, never a crash (run under VLMD_SANITIZE=ON to check memory too).
TEST(DecodeTest, CorruptedInputsFailCleanly) {
  const std::string text = ReadSourceFile(std::string(kUnitDir) + "decode_cases.json");
  ASSERT_FALSE(text.empty());
  std::mt19937 rng(7);
  int decoded = 0, refused = 0;
  const auto doc = nlohmann::json::parse(text);
  for (const auto& c : doc.at("cases")) {
    const std::string original = ReadSourceFile(kUnitDir + c.at("input").get<std::string>());
    for (int trial = 0; trial < 40; ++trial) {
      std::string data = original;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) data[8 + rng() % (data.size() - 8)] ^= 1 << (rng() % 8);
      if (trial % 4 == 0) data.resize(rng() % data.size());
      auto r = DecodeImage(data, DecodeLimits{1 << 20, 1 << 20}, "fuzz");
      if (r.ok()) {
        ASSERT_EQ(r->pixels.size(), static_cast<size_t>(r->width) * r->height * 3);
        ++decoded;
      } else {
        ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
        ++refused;
      }
    }
  }
  std::cout << "[ fuzz     ] decoded " << decoded << ", refused " << refused << "\n";
}

// stb keeps its failure reason thread-local: threads decoding good and bad data at once each
// get their own result and message.
TEST(DecodeTest, ConcurrentDecodesAreIndependent) {
  const std::string good = ReadSourceFile(std::string(kUnitDir) + "png_rgb16.png");
  const std::vector<uint8_t> expected = MustDecode(good).pixels;
  const std::string bad = good.substr(0, good.size() / 2);
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string name = "t" + std::to_string(t);
        auto r = DecodeImage(t % 2 ? bad : good, DecodeLimits{}, name);
        const bool ok = t % 2 ? (!r.ok() && r.status().message().find(name) != std::string::npos)
                              : (r.ok() && r->pixels == expected);
        failures[t] += !ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST(DecodeTest, DetectsFormatsBySignature) {
  using vision_internal::DetectFormat;
  using vision_internal::ImageFormat;
  EXPECT_EQ(DetectFormat("\x89PNG\r\n\x1a\nrest"), ImageFormat::kPng);
  EXPECT_EQ(DetectFormat("\xff\xd8\xff\xe0"), ImageFormat::kJpeg);
  EXPECT_EQ(DetectFormat("GIF87a..."), ImageFormat::kGif);
  EXPECT_EQ(DetectFormat("BM......"), ImageFormat::kBmp);
  EXPECT_EQ(DetectFormat("\x89PNG"), ImageFormat::kUnknown);
}

}  // namespace
}  // namespace vlmd

namespace vlmd {
namespace {

// A corrupt progressive JPEG (48x64, three components) that the fuzzer built and that crashed
// stb_image's progressive decoder (a read far out of bounds). libjpeg-turbo decodes it with
// warnings, as PIL would; what matters is an image of the header's size or a clean refusal.
TEST(DecodeTest, FuzzedProgressiveJpegDoesNotCrash) {
  const std::string data = ReadSourceFile(std::string(kUnitDir) + "fuzz_progressive_crash.jpg");
  ASSERT_EQ(data.size(), 860u);
  auto r = DecodeImage(data, DecodeLimits{}, "fuzzed.jpg");
  if (r.ok()) {
    EXPECT_EQ(r->width, 64);
    EXPECT_EQ(r->height, 48);
    EXPECT_EQ(r->pixels.size(), 64u * 48u * 3u);
  } else {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
}

}  // namespace
}  // namespace vlmd
