// Parity with the reference: tests/fixtures/preprocess/cases.json, written on the GPU machine by
// tests/reference/make_fixtures.py from transformers 5.17's Qwen2VLImageProcessor and from
// torch 2.11's uint8 F.interpolate(bicubic, antialias=True) (the *_<min>_<max>.png files).
// Accepted layouts: a JSON array of cases, or an object with the array under "cases".
//
// Every input, PNG and JPEG, must match exactly: decoded RGB (its sum against images/index.json),
// the resized uint8 image byte for byte, the grid, the first rows of pixel_values as float32, and
// the sums to 1e-6 relative. (JPEG is decoded by libjpeg-turbo, the library PIL uses.)
//
// Missing fixtures skip the test, or fail it when VLMD_REQUIRE_FIXTURES=1.

#include <cmath>
#include <cstdlib>
#include <string>

#include "core/base/file_util.h"
#include "core/vision/image.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using nlohmann::json;

std::string FixtureRoot() {
  const char* dir = std::getenv("VLMD_FIXTURES_DIR");
  return dir != nullptr ? dir : std::string(VLMD_SOURCE_DIR) + "/tests/fixtures";
}

bool RequireFixtures() {
  const char* v = std::getenv("VLMD_REQUIRE_FIXTURES");
  return v != nullptr && std::string(v) == "1";
}

RgbImage DecodeFixture(const std::string& relative) {
  auto data = ReadFile(JoinPath(FixtureRoot(), relative));
  EXPECT_TRUE(data.ok()) << data.status();
  if (!data.ok()) return {};
  auto image = DecodeImage(*data, DecodeLimits{}, relative);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *std::move(image) : RgbImage{};
}

// Largest absolute difference between two byte images of the same shape, and how many differ.
std::pair<int, int64_t> ByteDiff(const RgbImage& a, const RgbImage& b) {
  int max_diff = 0;
  int64_t count = 0;
  for (size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i) {
    const int d = std::abs(a.pixels[i] - b.pixels[i]);
    max_diff = std::max(max_diff, d);
    count += d != 0;
  }
  return {max_diff, count};
}

struct Sums {
  double sum = 0, abs_sum = 0;
};

Sums SumOf(const std::vector<float>& v) {
  Sums s;
  for (float x : v) {
    s.sum += x;
    s.abs_sum += std::abs(x);
  }
  return s;
}

// Decoded RGB against the sum of PIL's convert("RGB") recorded in images/index.json.
void CheckDecodedSum(const json& index, const std::string& file, const RgbImage& image) {
  for (const json& e : index) {
    if (e.value("file", "") != file || !e.contains("rgb_sum")) continue;
    int64_t sum = 0;
    for (uint8_t v : image.pixels) sum += v;
    const int64_t expected = e["rgb_sum"].get<int64_t>();
    EXPECT_EQ(sum, expected) << file << ": decoded RGB differs from PIL's";
  }
}

// The uint8 resize against torch's, saved losslessly as resized_file.
void CheckResized(const json& c, const RgbImage& input) {
  const auto hw = c.at("resized_hw").get<std::vector<int>>();
  const RgbImage resized = ResizeBicubicAntialias(input, hw[0], hw[1]);
  const RgbImage expected = DecodeFixture(c.at("resized_file").get<std::string>());
  ASSERT_EQ(resized.width, expected.width);
  ASSERT_EQ(resized.height, expected.height);
  const auto [max_diff, count] = ByteDiff(resized, expected);
  EXPECT_EQ(max_diff, 0) << count << " of " << resized.pixels.size() << " bytes differ";
}

// The first rows of pixel_values as float32, and the sums of all of them.
void CheckPixelValues(const json& c, const PixelPatches& patches) {
  const json& head = c.at("pixel_values_head");
  for (size_t r = 0; r < head.size(); ++r) {
    for (size_t k = 0; k < head[r].size(); ++k) {
      const float want = static_cast<float>(head[r][k].get<double>());
      const float got = patches.values[r * patches.patch_dim + k];
      ASSERT_EQ(got, want) << "pixel_values[" << r << "][" << k << "]";
    }
  }
  const Sums s = SumOf(patches.values);
  const double want_sum = c.at("pixel_values_sum").get<double>();
  const double want_abs = c.at("pixel_values_abs_sum").get<double>();
  const double tolerance = 1e-6;
  EXPECT_NEAR(s.sum, want_sum, tolerance * std::abs(want_sum));
  EXPECT_NEAR(s.abs_sum, want_abs, tolerance * std::abs(want_abs));
}

void CheckCase(const json& c, const json& index) {
  const std::string image_file = c.at("image").get<std::string>();
  SCOPED_TRACE(image_file + " min_pixels " + std::to_string(c.at("min_pixels").get<int64_t>()) +
               " max_pixels " + std::to_string(c.at("max_pixels").get<int64_t>()));
  const RgbImage input = DecodeFixture(image_file);
  ASSERT_GT(input.width, 0);
  CheckDecodedSum(index, image_file, input);

  PreprocessOptions options;
  options.min_pixels = c.at("min_pixels").get<int64_t>();
  options.max_pixels = c.at("max_pixels").get<int64_t>();
  auto patches = PreprocessImage(input, options);
  ASSERT_TRUE(patches.ok()) << patches.status();
  const auto grid = c.at("grid_thw").get<std::vector<int64_t>>();
  ASSERT_EQ(grid, (std::vector<int64_t>{patches->grid_t, patches->grid_h, patches->grid_w}));
  EXPECT_EQ(patches->num_patches(), c.at("num_patches").get<int64_t>());
  CheckResized(c, input);
  CheckPixelValues(c, *patches);
}

TEST(PreprocessParityTest, MatchesTransformersAndTorch) {
  const std::string path = JoinPath(FixtureRoot(), "preprocess/cases.json");
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (RequireFixtures()) FAIL() << "parity fixture missing: " << path;
    GTEST_SKIP() << "parity fixture missing: " << path << " (set VLMD_REQUIRE_FIXTURES=1 to fail)";
  }
  const json doc = json::parse(*text);
  const json& cases = doc.is_array() ? doc : doc.at("cases");
  json index = json::array();
  if (auto idx = ReadFile(JoinPath(FixtureRoot(), "images/index.json")); idx.ok()) {
    index = json::parse(*idx);
  }
  ASSERT_FALSE(cases.empty());
  for (const json& c : cases) CheckCase(c, index);
}

}  // namespace
}  // namespace vlmd
