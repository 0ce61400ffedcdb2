// JPEG decoding with libjpeg-turbo, the library PIL decodes JPEG with: the same integer IDCT
// (JDCT_ISLOW, libjpeg's default and PIL's) and the same "fancy" chroma upsampling, so the RGB
// bytes equal PIL's Image.open(...).convert("RGB"). (stb_image, used before, was a few levels
// off and crashed on some corrupt progressive files the fuzzer built.)
//
// Colour: grey and YCbCr come out as RGB from libjpeg (grey replicated, as PIL's L -> RGB).
// CMYK/YCCK come out as CMYK; files with an Adobe marker store inverted inks, which PIL undoes
// (rawmode "CMYK;I") before its CMYK -> RGB conversion, r = (255 - k) - c * (255 - k) / 255
// with PIL's rounding; the same is done here.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <vector>

// jpeglib.h needs size_t and FILE declared before it.
#include <jpeglib.h>

#include "absl/strings/str_cat.h"
#include "core/vision/decode_internal.h"

namespace vlmd {
namespace vision_internal {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnError(j_common_ptr cinfo) {
  ErrorManager* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (e.g. "Corrupt JPEG data: N extraneous bytes") are not errors, as in PIL.
void OnMessage(j_common_ptr, int) {}

// a * b / 255 rounded as PIL's MULDIV255.
inline int MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

inline uint8_t Clip8(int v) { return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v); }

// Decodes into `out` (RGB, row-major). Returns false with err->message set on failure. Plain C
// state only between setjmp and the calls that may longjmp: nothing here has a destructor that
// the jump would skip (the vectors are owned by the caller and sized before decoding starts).
bool Decode(const unsigned char* data, unsigned long size, ErrorManager* err,
            jpeg_decompress_struct* cinfo, std::vector<uint8_t>* out, std::vector<uint8_t>* row,
            int* width, int* height) {
  cinfo->err = jpeg_std_error(&err->base);
  err->base.error_exit = OnError;
  err->base.emit_message = OnMessage;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, size);
  jpeg_read_header(cinfo, TRUE);
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(cinfo);
  *width = static_cast<int>(cinfo->output_width);
  *height = static_cast<int>(cinfo->output_height);
  const int components = cinfo->output_components;
  out->resize(static_cast<size_t>(*width) * static_cast<size_t>(*height) * 3);
  row->resize(static_cast<size_t>(*width) * static_cast<size_t>(components));
  const bool inverted = cmyk && cinfo->saw_Adobe_marker;
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* dst = out->data() + static_cast<size_t>(cinfo->output_scanline) * (*width) * 3;
    JSAMPROW rows[1] = {cmyk ? row->data() : dst};
    jpeg_read_scanlines(cinfo, rows, 1);
    if (!cmyk) continue;
    for (int x = 0; x < *width; ++x) {
      const uint8_t* p = row->data() + static_cast<size_t>(x) * 4;
      const int k = inverted ? 255 - p[3] : p[3];
      const int nk = 255 - k;
      for (int c = 0; c < 3; ++c) {
        const int ink = inverted ? 255 - p[c] : p[c];
        dst[3 * x + c] = Clip8(nk - MulDiv255(ink, nk));
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  jpeg_destroy_decompress(cinfo);
  return true;
}

}  // namespace

StatusOr<RgbImage> DecodeJpeg(std::string_view data, std::string_view what) {
  ErrorManager err{};
  jpeg_decompress_struct cinfo{};
  RgbImage image;
  std::vector<uint8_t> row;
  if (!Decode(reinterpret_cast<const unsigned char*>(data.data()),
              static_cast<unsigned long>(data.size()), &err, &cinfo, &image.pixels, &row,
              &image.width, &image.height)) {
    return InvalidImage(what, absl::StrCat("cannot decode jpeg (", err.message, ")"));
  }
  return image;
}

}  // namespace vision_internal
}  // namespace vlmd
