// smart_resize (spec §3.2) against the worked values of §3.2 and the grids measured in §12.

#include "core/vision/image.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

constexpr int kFactor = 28;
constexpr int64_t kMin = 3136;
constexpr int64_t kMaxClass = 1003520;     // class default (§12)
constexpr int64_t kMaxRelease = 12845056;  // released preprocessor_config.json (§3.1)

ResizedSize Resize(int h, int w, int64_t min_px = kMin, int64_t max_px = kMaxClass) {
  auto r = SmartResize(h, w, kFactor, min_px, max_px);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ResizedSize{};
}

// §3.2 table: input (h, w), output (h, w) for both max_pixels.
TEST(SmartResizeTest, WorkedValuesOfSpec) {
  struct Case {
    int h, w, release_h, release_w, class_h, class_w;
  } cases[] = {{480, 640, 476, 644, 476, 644},
               {1365, 2048, 1372, 2044, 812, 1204},
               {3000, 4000, 2996, 4004, 840, 1148},
               {70, 70, 56, 56, 56, 56}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.h << "x" << c.w);
    ResizedSize release = Resize(c.h, c.w, kMin, kMaxRelease);
    EXPECT_EQ(release.height, c.release_h);
    EXPECT_EQ(release.width, c.release_w);
    ResizedSize cls = Resize(c.h, c.w);
    EXPECT_EQ(cls.height, c.class_h);
    EXPECT_EQ(cls.width, c.class_w);
  }
}

// §12 writes sizes as PIL does, width x height: "769x76 -> grid (1, 6, 54)" is 76 rows of 769
// pixels resized to 84x756 (h x w), i.e. 6 x 54 patches of 14.
TEST(SmartResizeTest, GridsMeasuredWithTransformers) {
  struct Case {
    int pil_w, pil_h;
    int64_t min_px, max_px;
    int grid_h, grid_w;
  } cases[] = {{769, 76, kMin, kMaxClass, 6, 54},     {347, 76, kMin, kMaxClass, 6, 24},
               {176, 53, kMin, kMaxClass, 4, 12},     {1000, 700, kMin, kMaxClass, 50, 72},
               {300, 200, kMin, kMaxClass, 14, 22},   {769, 76, 4 * 784, 64 * 784, 4, 50},
               {1000, 700, 4 * 784, 64 * 784, 12, 18}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.pil_w << "x" << c.pil_h);
    ResizedSize r = Resize(c.pil_h, c.pil_w, c.min_px, c.max_px);
    EXPECT_EQ(r.height / 14, c.grid_h);
    EXPECT_EQ(r.width / 14, c.grid_w);
    EXPECT_EQ(r.height % kFactor, 0);
    EXPECT_EQ(r.width % kFactor, 0);
  }
}

TEST(SmartResizeTest, RoundsHalfToEven) {
  // 70 / 28 = 2.5 -> 2 (std::round would give 3 -> 84); 98 / 28 = 3.5 -> 4.
  EXPECT_EQ(Resize(70, 70).height, 56);
  EXPECT_EQ(Resize(98, 98).height, 112);
}

TEST(SmartResizeTest, SmallImagesGrowToMinPixels) {
  ResizedSize r = Resize(14, 14);
  EXPECT_EQ(r.height, 56);
  EXPECT_EQ(r.width, 56);
  r = Resize(10, 1900);  // rounds to 0 rows, then scaled up by sqrt(min / area)
  EXPECT_EQ(r.height, 28);
  EXPECT_EQ(r.width, 784);
}

TEST(SmartResizeTest, LargeImagesShrinkToMaxPixels) {
  ResizedSize r = Resize(4000, 3000);
  EXPECT_EQ(r.height, 1148);
  EXPECT_EQ(r.width, 840);
  EXPECT_LE(int64_t{r.height} * r.width, kMaxClass);
}

TEST(SmartResizeTest, AspectRatioLimit) {
  ResizedSize r = Resize(5600, 28);  // exactly 200 is allowed
  EXPECT_EQ(r.height, 5600);
  EXPECT_EQ(r.width, 28);
  auto bad = SmartResize(5601, 28, kFactor, kMin, kMaxClass);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("aspect ratio"), std::string::npos);
}

TEST(SmartResizeTest, RejectsNonPositiveSizes) {
  EXPECT_EQ(SmartResize(0, 10, kFactor, kMin, kMaxClass).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SmartResize(10, 10, 0, kMin, kMaxClass).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vlmd
