#include "tests/unit/eval/eval_test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/api/offline.h"
#include "tests/unit/vision/test_png.h"

namespace vlmd::eval_testing {

TinyWorld& TinyWorld::Get() {
  static TinyWorld* world = new TinyWorld();
  return *world;
}

TinyWorld::TinyWorld() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/vlmd_eval_XXXXXX";
  root_ = mkdtemp(pattern.data());
  static std::string to_remove;
  to_remove = root_;
  std::atexit([] { std::filesystem::remove_all(to_remove); });
  Status s = api::InitModel("tiny", model_dir(), 7, "auto", TokenizerPath());
  if (!s.ok()) ADD_FAILURE() << "InitModel: " << s;
}

std::string TinyWorld::NewDir(const std::string& name) const {
  std::string dir = root_ + "/" + name;
  std::filesystem::create_directories(dir);
  return dir;
}

std::string TokenizerPath() {
  return std::string(VLMD_SOURCE_DIR) + "/third_party/tokenizer/tokenizer.json";
}

std::string WritePng(const std::string& path, int width, int height, uint8_t r, uint8_t g,
                     uint8_t b) {
  vision_testing::PngSpec spec;
  spec.width = width;
  spec.height = height;
  for (int i = 0; i < width * height; ++i) {
    // A little texture so that patches differ.
    spec.rows.push_back(static_cast<uint8_t>(r + (i % 7) * 3));
    spec.rows.push_back(g);
    spec.rows.push_back(static_cast<uint8_t>(b + (i / width) % 5));
  }
  WriteText(path, vision_testing::EncodePng(spec));
  return path;
}

void WriteJsonl(const std::string& path, const std::vector<nlohmann::json>& rows) {
  std::string text;
  for (const nlohmann::json& row : rows) text += row.dump() + "\n";
  WriteText(path, text);
}

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(ReadText(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace vlmd::eval_testing
