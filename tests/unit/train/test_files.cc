#include "tests/unit/train/test_files.h"

#include <stb_image_write.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "gtest/gtest.h"

namespace vlmd::testing {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/vlmd_train_test_XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
  // Canonical, so that paths compare equal to what ResolveUnderRoots returns.
  path_ = std::filesystem::canonical(buffer.data()).string();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Path(const std::string& name) const { return path_ + "/" + name; }

std::string TempDir::Write(const std::string& name, const std::string& text) const {
  const std::string full = Path(name);
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  std::ofstream out(full, std::ios::binary);
  out << text;
  EXPECT_TRUE(out.good()) << "cannot write " << full;
  return full;
}

std::string TempDir::WritePng(const std::string& name, int width, int height) const {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(width - 1, 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(height - 1, 1));
      p[2] = 128;
    }
  }
  const std::string full = Path(name);
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  EXPECT_NE(stbi_write_png(full.c_str(), width, height, 3, pixels.data(), width * 3), 0);
  return full;
}

}  // namespace vlmd::testing
