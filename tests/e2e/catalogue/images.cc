// Catalogue rows for images: corrupt, truncated and unsupported bytes, decompression-bomb
// headers, limits, and server paths that escape the allowed root or are not plain files.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/e2e/catalogue/catalogue.h"
#include "tests/e2e/harness.h"
#include "tests/unit/vision/test_png.h"

namespace vlmd::e2e::catalogue {
namespace {

using grpc::StatusCode;
using vision_testing::EncodePng;
using vision_testing::IhdrPayload;
using vision_testing::PngChunk;

std::string Fixture(const std::string& name) {
  return ReadFile(SourceDir() + "/tests/fixtures/images/" + name);
}

std::string Png(int width, int height) {
  return EncodePng({width, height, 8, 0, std::vector<uint8_t>(size_t(width) * height, 128), {}});
}

// A PNG whose IHDR claims width x height (valid CRC) with a tiny IDAT.
std::string PngHeader(uint32_t width, uint32_t height) {
  return std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", IhdrPayload(width, height, 8, 2)) +
         PngChunk("IDAT", std::string("\x78\x01\x01\x00\x00\xff\xff\x00\x00\x00\x01", 11)) +
         PngChunk("IEND", "");
}

// Baseline JPEG: SOI + SOF0 claiming width x height, nothing after.
std::string JpegHeader(int width, int height) {
  std::string s("\xff\xd8\xff\xc0\x00\x11\x08", 7);
  s += static_cast<char>(height >> 8);
  s += static_cast<char>(height & 255);
  s += static_cast<char>(width >> 8);
  s += static_cast<char>(width & 255);
  s += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  return s;
}

std::string Le16(int v) { return {static_cast<char>(v & 255), static_cast<char>((v >> 8) & 255)}; }
std::string Le32(int64_t v) { return Le16(v & 0xffff) + Le16((v >> 16) & 0xffff); }

// 24-bit BMP header (54 bytes) claiming width x height, then `pixels` bytes.
std::string BmpHeader(int64_t width, int64_t height, size_t pixels = 16) {
  std::string info = Le32(40) + Le32(width) + Le32(height) + Le16(1) + Le16(24) + Le32(0) +
                     Le32(0) + Le32(2835) + Le32(2835) + Le32(0) + Le32(0);
  return "BM" + Le32(54 + pixels) + Le32(0) + Le32(54) + info + std::string(pixels, '\x7f');
}

std::string GifHeader(int width, int height) {
  return "GIF89a" + Le16(width) + Le16(height) + std::string("\x00\x00\x00", 3) + ";";
}

void AddInline(std::vector<BadCase>* out, const std::string& name, const std::string& bytes,
               std::vector<std::string> message) {
  message.insert(message.begin(), "image 0");
  out->push_back(Case("inline image: " + name, kInfer,
                      WithImage([&](v1::Image* i) { i->set_data(bytes); }),
                      StatusCode::INVALID_ARGUMENT, message));
}

void AddTruncations(std::vector<BadCase>* out, const std::string& format, const std::string& bytes,
                    const std::vector<size_t>& cuts) {
  for (size_t cut : cuts) {
    if (cut >= bytes.size()) continue;
    AddInline(out, absl::StrCat(format, " truncated to ", cut, " of ", bytes.size(), " bytes"),
              bytes.substr(0, cut),
              {"truncated|corrupt|unrecognised signature|cannot decode|no pixels"});
  }
}

void AddBytesCases(std::vector<BadCase>* out) {
  const std::string png = Fixture("tiny_20x15.png");
  const std::string jpg = Fixture("unit/jpeg_grey.jpg");
  const std::string gif = Fixture("unit/gif_pil.gif");
  const std::string bmp = Fixture("unit/bmp_rgb24.bmp");
  // (Cutting only a PNG's IEND CRC or a GIF's trailer byte leaves a decodable image, for PIL too.)
  AddTruncations(out, "png", png,
                 {1, 4, 7, 8, 12, 16, 20, 24, 26, 29, 33, 40, 60, png.size() / 2, png.size() - 12});
  AddTruncations(out, "jpeg", jpg, {2, 3, 4, 10, 20, 100, 300, jpg.size() / 2, jpg.size() - 2});
  AddTruncations(out, "gif", gif, {3, 6, 8, 10, 13, 20, 40, gif.size() / 2});
  AddTruncations(out, "bmp", bmp, {2, 10, 14, 30, 54, 100, bmp.size() - 1});
  const std::string pixels = "exceeds the limit of 100000 pixels";
  AddInline(out, "png header 100000x100000", PngHeader(100000, 100000), {"100000x100000", pixels});
  AddInline(out, "png header 100001x1", PngHeader(100001, 1), {"100001x1", pixels});
  AddInline(out, "png header 100000x1 (at the limit) without its pixels", PngHeader(100000, 1),
            {"cannot decode png"});
  AddInline(out, "png header 65535x65535", PngHeader(65535, 65535), {"65535x65535", pixels});
  AddInline(out, "png header width 0", PngHeader(0, 10), {"corrupt png header"});
  AddInline(out, "png header width 2^31", PngHeader(0x80000000u, 1), {"corrupt png header"});
  AddInline(out, "png header width 2^32-1", PngHeader(0xffffffffu, 0xffffffffu),
            {"corrupt png header"});
  AddInline(out, "jpeg header 65535x65535", JpegHeader(65535, 65535), {"65535x65535", pixels});
  AddInline(out, "jpeg header 60000x2", JpegHeader(60000, 2), {"60000x2", pixels});
  AddInline(out, "gif header 65535x65535", GifHeader(65535, 65535), {"65535x65535", pixels});
  AddInline(out, "gif header 1000x1000", GifHeader(1000, 1000), {"1000x1000", pixels});
  AddInline(out, "bmp header 100000x100000", BmpHeader(100000, 100000), {"100000x100000|corrupt"});
  AddInline(out, "bmp header width 0", BmpHeader(0, 4), {"no pixels|corrupt"});
  AddInline(out, "bmp header negative width", BmpHeader(-5, 4),
            {"corrupt|no pixels|cannot decode"});
  AddInline(out, "bmp header 20000x20000 with 16 bytes of pixels", BmpHeader(20000, 20000),
            {"20000x20000", pixels});
  std::string odd = Fixture("unit/bmp16_565.bmp");
  odd[54] = 0x00;
  odd[55] = static_cast<char>(0xF0);
  AddInline(out, "bmp with an odd 16-bit bitfields layout", odd, {"bitfields layout"});
  const std::string unsupported = "not a PNG, JPEG, BMP or GIF image (unrecognised signature)";
  AddInline(out, "plain text", "this is not an image", {unsupported});
  AddInline(out, "one zero byte", std::string(1, '\0'), {unsupported});
  AddInline(out, "webp signature", "RIFF\x10\x00\x00\x00WEBPVP8 ", {unsupported});
  AddInline(out, "tiff signature", std::string("II*\0\x08\0\0\0", 8), {unsupported});
  AddInline(out, "svg document", "<svg xmlns='http://www.w3.org/2000/svg'/>", {unsupported});
  AddInline(out, "pdf document", "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", {unsupported});
  AddInline(out, "ico signature", std::string("\0\0\1\0\1\0\x10\x10", 8), {unsupported});
  AddInline(out, "png without IHDR", png.substr(0, 8) + PngChunk("IEND", ""), {"IHDR"});
  AddInline(out, "aspect ratio 300:1", Png(300, 1), {"aspect ratio"});
  AddInline(out, "aspect ratio 1:250", Png(1, 250), {"aspect ratio"});
  AddInline(out, "over max_image_bytes", png + std::string(70000, '\0'),
            {"exceeds the limit of 65536 bytes"});
  out->push_back(
      Case("inline image: empty data", kInfer, WithImage([](v1::Image* i) { i->set_data(""); }),
           StatusCode::INVALID_ARGUMENT, {"messages[0].content[0].image.data is empty"}));
  out->push_back(Case("image with neither data nor path", kInfer,
                      WithImage([](v1::Image* i) { i->Clear(); }), StatusCode::INVALID_ARGUMENT,
                      {"messages[0].content[0].image has neither data nor path"}));
}

void AddPath(std::vector<BadCase>* out, const std::string& name, const std::string& path,
             StatusCode code, std::vector<std::string> message) {
  out->push_back(Case("image path: " + name, kInfer,
                      WithImage([&](v1::Image* i) { i->set_path(path); }), code, message));
}

void AddPathCases(const Env& env, std::vector<BadCase>* out) {
  const std::string& r = env.root;
  const std::string outside = "outside the allowed roots";
  const StatusCode denied = StatusCode::PERMISSION_DENIED;
  AddPath(out, "absolute, outside the root", env.outside + "/secret.png", denied, {outside});
  AddPath(out, "dot-dot out of the root", r + "/../outside/secret.png", denied, {outside});
  AddPath(out, "dot-dot from a subdirectory", r + "/sub/../../outside/secret.png", denied,
          {outside});
  AddPath(out, "dot-dot to a missing file outside", r + "/../outside/none.png", denied, {outside});
  AddPath(out, "many dot-dots", r + "/../../../../../../../../etc/passwd", denied, {outside});
  AddPath(out, "symlink to a file outside", r + "/escape.png", denied, {outside, "escape.png"});
  AddPath(out, "symlink to a directory outside", r + "/linkdir/secret.png", denied, {outside});
  AddPath(out, "symlink to /etc", r + "/etc/passwd", denied, {outside});
  AddPath(out, "dangling symlink", r + "/dangling.png", denied, {outside});
  AddPath(out, "symlink loop", r + "/loop.png", denied, {outside});
  AddPath(out, "/etc/passwd", "/etc/passwd", denied, {outside});
  AddPath(out, "missing file outside (no existence oracle)", "/etc/no-such-file", denied,
          {outside});
  AddPath(out, "/proc/self/environ", "/proc/self/environ", denied, {outside});
  AddPath(out, "/dev/zero", "/dev/zero", denied, {outside});
  AddPath(out, "relative path (server's working directory)", "tiny.png", denied, {outside});
  AddPath(out, "file URL", "file://" + r + "/tiny.png", denied, {outside});
  AddPath(out, "http URL", "http://127.0.0.1/tiny.png", denied, {outside});
  AddPath(out, "home directory", "~/tiny.png", denied, {outside});
  AddPath(out, "blank path", "   ", denied, {outside});
  AddPath(out, "prefix sibling of the root", r + "2/tiny.png", denied, {outside});
  AddPath(out, "NUL byte in the path", r + std::string("/tiny.png\0.txt", 14),
          StatusCode::INVALID_ARGUMENT, {"NUL byte"});
  AddPath(out, "missing file under the root", r + "/none.png", StatusCode::NOT_FOUND,
          {"not found", "none.png"});
  AddPath(out, "very long missing name", r + "/" + std::string(5000, 'a'), StatusCode::NOT_FOUND,
          {"not found"});
  AddPath(out, "a directory", r + "/sub", StatusCode::INVALID_ARGUMENT,
          {"image 0", "not a regular file"});
  AddPath(out, "the root itself", r, StatusCode::INVALID_ARGUMENT, {"not a regular file"});
  AddPath(out, "a FIFO", r + "/fifo.png", StatusCode::INVALID_ARGUMENT, {"not a regular file"});
  AddPath(out, "an empty file", r + "/empty.png", StatusCode::INVALID_ARGUMENT,
          {"image 0", "unrecognised signature"});
  AddPath(out, "a text file", r + "/text.png", StatusCode::INVALID_ARGUMENT,
          {"unrecognised signature"});
  AddPath(out, "a truncated png", r + "/trunc.png", StatusCode::INVALID_ARGUMENT,
          {"image 0", "trunc.png"});
  AddPath(out, "over max_image_bytes", r + "/big.png", StatusCode::INVALID_ARGUMENT,
          {"big.png", "over the limit of 65536"});
  AddPath(out, "over max_image_pixels", r + "/photo.jpg", StatusCode::INVALID_ARGUMENT,
          {"640x480", "exceeds the limit of 100000 pixels"});
  AddPath(out, "empty path", "", StatusCode::INVALID_ARGUMENT,
          {"messages[0].content[0].image.path is empty"});
}

}  // namespace

void PrepareFiles(const Env& env) {
  namespace fs = std::filesystem;
  const std::string& r = env.root;
  fs::create_directories(r + "/sub");
  fs::create_directories(r + "2");
  fs::create_directories(env.outside);
  WriteFile(r + "/tiny.png", Fixture("tiny_20x15.png"));
  WriteFile(r + "/photo.jpg", Fixture("photo_640x480.jpg"));
  WriteFile(r + "2/tiny.png", Fixture("tiny_20x15.png"));
  WriteFile(env.outside + "/secret.png", Fixture("tiny_20x15.png"));
  WriteFile(r + "/empty.png", "");
  WriteFile(r + "/text.png", "hello\n");
  WriteFile(r + "/trunc.png", Fixture("tiny_20x15.png").substr(0, 100));
  WriteFile(r + "/big.png", Fixture("tiny_20x15.png") + std::string(70000, '\0'));
  symlink((env.outside + "/secret.png").c_str(), (r + "/escape.png").c_str());
  symlink(env.outside.c_str(), (r + "/linkdir").c_str());
  symlink("/etc", (r + "/etc").c_str());
  symlink((env.outside + "/none.png").c_str(), (r + "/dangling.png").c_str());
  symlink("loop.png", (r + "/loop.png").c_str());
  mkfifo((r + "/fifo.png").c_str(), 0600);
}

void AddImageCases(const Env& env, std::vector<BadCase>* out) {
  AddBytesCases(out);
  AddPathCases(env, out);
}

}  // namespace vlmd::e2e::catalogue
