// PreprocessImage: normalisation values, the spec §3.4 patch order checked position by position
// on a synthetic image, temporal duplication, shapes and errors.

#include <cstring>

#include "core/vision/image.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

// Pixel (y, x, c) of the synthetic image; distinct enough to catch any mix-up of rows, columns
// and channels (y and x are below 112 here).
uint8_t Synthetic(int y, int x, int c) {
  return static_cast<uint8_t>(c == 0 ? y : c == 1 ? x : (y * 7 + x * 3) % 256);
}

RgbImage MakeSynthetic(int width, int height) {
  RgbImage image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        image.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] = Synthetic(y, x, c);
      }
    }
  }
  return image;
}

// Options that keep a 112x56 image at its size (smart_resize leaves multiples of 28 alone when
// they lie within the pixel bounds) and make the normalisation v / 255.
PreprocessOptions Identityish() {
  PreprocessOptions o;
  o.min_pixels = 28 * 28;
  o.max_pixels = 1 << 20;
  o.mean = {0.0f, 0.0f, 0.0f};
  o.std = {1.0f, 1.0f, 1.0f};
  return o;
}

float Norm(uint8_t v) { return static_cast<float>(v) / 255.0f; }

TEST(PreprocessTest, NormalisesWithFloat32MeanAndStdTimes255) {
  // (float(u8) - f32(mean) * 255) / (f32(std) * 255), each step in float32; the literals were
  // computed with numpy float32.
  RgbImage image{56, 56, std::vector<uint8_t>(56 * 56 * 3)};
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = 0;
    image.pixels[i + 1] = 128;
    image.pixels[i + 2] = 255;
  }
  auto p = PreprocessImage(image, PreprocessOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  const float r0 = p->values[0];          // c = 0, value 0
  const float g128 = p->values[2 * 196];  // c = 1, value 128
  const float b255 = p->values[4 * 196];  // c = 2, value 255
  EXPECT_EQ(r0, -1.7922625541687012f);
  EXPECT_EQ(g128, 0.16889715194702148f);
  EXPECT_EQ(b255, 2.145897150039673f);
}

TEST(PreprocessTest, ShapesAndTokens) {
  auto p = PreprocessImage(MakeSynthetic(112, 56), Identityish());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->grid_t, 1);
  EXPECT_EQ(p->grid_h, 4);
  EXPECT_EQ(p->grid_w, 8);
  EXPECT_EQ(p->patch_dim, 1176);
  EXPECT_EQ(p->num_patches(), 32);
  EXPECT_EQ(p->num_tokens(2), 8);
  EXPECT_EQ(p->values.size(), 32u * 1176);
}

// Every value against the position the spec's formulas give: row = ((bh*(gw/2) + bw)*2 + mh)*2
// + mw, column = ((c*2 + tp)*14 + ph)*14 + pw, pixel ((bh*2+mh)*14+ph, (bw*2+mw)*14+pw).
TEST(PreprocessTest, PatchOrderFollowsSpec) {
  auto p = PreprocessImage(MakeSynthetic(112, 56), Identityish());
  ASSERT_TRUE(p.ok()) << p.status();
  const int gw = 8;
  for (int row = 0; row < 32; ++row) {
    const int mw = row % 2, mh = (row / 2) % 2, bw = (row / 4) % (gw / 2), bh = row / 4 / (gw / 2);
    for (int col = 0; col < 1176; ++col) {
      const int pw = col % 14, ph = (col / 14) % 14, c = col / 196 / 2;
      const int y = (bh * 2 + mh) * 14 + ph, x = (bw * 2 + mw) * 14 + pw;
      ASSERT_EQ(p->values[row * 1176 + col], Norm(Synthetic(y, x, c)))
          << "row " << row << " col " << col;
    }
  }
}

// The same positions written out by hand for a few entries.
TEST(PreprocessTest, PatchOrderByHand) {
  auto p = PreprocessImage(MakeSynthetic(112, 56), Identityish());
  ASSERT_TRUE(p.ok()) << p.status();
  auto at = [&](int row, int col) { return p->values[row * 1176 + col]; };
  EXPECT_EQ(at(0, 0), Norm(Synthetic(0, 0, 0)));
  EXPECT_EQ(at(1, 0), Norm(Synthetic(0, 14, 0)));   // merge window (0,0), patch (0,1)
  EXPECT_EQ(at(2, 0), Norm(Synthetic(14, 0, 0)));   // patch (1,0)
  EXPECT_EQ(at(3, 0), Norm(Synthetic(14, 14, 0)));  // patch (1,1)
  EXPECT_EQ(at(4, 0), Norm(Synthetic(0, 28, 0)));   // next window to the right
  EXPECT_EQ(at(16, 0), Norm(Synthetic(28, 0, 0)));  // second row of windows (gw/2 = 4)
  EXPECT_EQ(at(31, 1175), Norm(Synthetic(55, 111, 2)));
  EXPECT_EQ(at(0, 15), Norm(Synthetic(1, 1, 0)));   // ph = 1, pw = 1
  EXPECT_EQ(at(0, 392), Norm(Synthetic(0, 0, 1)));  // c = 1, tp = 0
  EXPECT_EQ(at(5, 2 * 392 + 3), Norm(Synthetic(0, 45, 2)));
}

// A single image is two identical frames: the tp = 1 half of each channel block repeats tp = 0.
TEST(PreprocessTest, TemporalDuplication) {
  auto p = PreprocessImage(MakeSynthetic(112, 56), Identityish());
  ASSERT_TRUE(p.ok()) << p.status();
  for (int row = 0; row < 32; ++row) {
    for (int c = 0; c < 3; ++c) {
      const float* block = &p->values[row * 1176 + c * 392];
      ASSERT_EQ(std::memcmp(block, block + 196, 196 * sizeof(float)), 0) << row << " " << c;
    }
  }
}

TEST(PreprocessTest, ResizesToSmartResizeSize) {
  PreprocessOptions o;                                 // class defaults
  auto p = PreprocessImage(MakeSynthetic(20, 15), o);  // tiny -> 56 x 84 (spec/fixture value)
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->grid_h, 4);
  EXPECT_EQ(p->grid_w, 6);
  o.min_pixels = 4 * 784;
  o.max_pixels = 64 * 784;
  p = PreprocessImage(MakeSynthetic(769, 76), o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->grid_h, 4);
  EXPECT_EQ(p->grid_w, 50);
}

TEST(PreprocessTest, Errors) {
  PreprocessOptions o;
  RgbImage bad{10, 10, std::vector<uint8_t>(5)};
  EXPECT_EQ(PreprocessImage(bad, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PreprocessImage(MakeSynthetic(201 * 28, 28), o).status().code(),
            absl::StatusCode::kInvalidArgument);  // aspect ratio > 200
  o.patch_size = 0;
  EXPECT_EQ(PreprocessImage(MakeSynthetic(56, 56), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = PreprocessOptions{};
  o.std[1] = 0.0f;
  EXPECT_EQ(PreprocessImage(MakeSynthetic(56, 56), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vlmd
