// get_rope_index (spec §6.1) on hand-computed sequences.
#include "core/model/qwen2vl.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

ModelConfig Config() {
  ModelConfig c;
  c.image_token_id = 9;
  c.vision.spatial_merge_size = 2;
  return c;
}

TEST(RopeIndex, TextOnlyIsArange) {
  RopeIndex r = ComputeRopeIndex({1, 2, 3, 4}, Config(), {});
  EXPECT_EQ(r.t, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.h, r.t);
  EXPECT_EQ(r.w, r.t);
  EXPECT_EQ(r.delta, 0);
}

TEST(RopeIndex, OneImageGridAndTextAfter) {
  // text(2) <image 1x4x6 patches = 2x3 merged tokens> text(2)
  std::vector<int32_t> ids = {1, 2, 9, 9, 9, 9, 9, 9, 3, 4};
  RopeIndex r = ComputeRopeIndex(ids, Config(), {{1, 4, 6}});
  EXPECT_EQ(r.t, (std::vector<int64_t>{0, 1, 2, 2, 2, 2, 2, 2, 5, 6}));
  EXPECT_EQ(r.h, (std::vector<int64_t>{0, 1, 2, 2, 2, 3, 3, 3, 5, 6}));
  EXPECT_EQ(r.w, (std::vector<int64_t>{0, 1, 2, 3, 4, 2, 3, 4, 5, 6}));
  // max position 6, length 10: delta = 6 + 1 - 10.
  EXPECT_EQ(r.delta, -3);
}

TEST(RopeIndex, TwoImagesBackToBack) {
  // Each image is 1x2x4 patches = 1x2 merged tokens; the second starts after the first's max.
  RopeIndex r = ComputeRopeIndex({1, 9, 9, 9, 9, 3}, Config(), {{1, 2, 4}, {1, 2, 4}});
  EXPECT_EQ(r.t, (std::vector<int64_t>{0, 1, 1, 3, 3, 5}));
  EXPECT_EQ(r.h, (std::vector<int64_t>{0, 1, 1, 3, 3, 5}));
  EXPECT_EQ(r.w, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(r.delta, 0);
}

}  // namespace
}  // namespace vlmd
