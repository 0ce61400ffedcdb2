// Shared pieces of the evaluation tests: a temporary directory with the tiny model (written
// once per test binary through api::InitModel), small PNGs and data sets in the fine-tuning
// formats, and reading results files back.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace vlmd::eval_testing {

// A fresh directory under $TMPDIR (removed at exit) holding `tiny/` (the tiny model).
class TinyWorld {
 public:
  // The process-wide world; created on first use.
  static TinyWorld& Get();
  const std::string& root() const { return root_; }
  std::string model_dir() const { return root_ + "/tiny"; }
  // A new empty directory under root().
  std::string NewDir(const std::string& name) const;

 private:
  TinyWorld();
  std::string root_;
};

// The tokenizer.json the tiny model gets (third_party/tokenizer).
std::string TokenizerPath();
// Writes a width x height RGB PNG of one colour; returns its path.
std::string WritePng(const std::string& path, int width, int height, uint8_t r, uint8_t g,
                     uint8_t b);
// Writes `rows` as a .jsonl file.
void WriteJsonl(const std::string& path, const std::vector<nlohmann::json>& rows);
// Reads a .jsonl file (one JSON object per line).
std::vector<nlohmann::json> ReadJsonl(const std::string& path);
std::string ReadText(const std::string& path);
void WriteText(const std::string& path, const std::string& text);

}  // namespace vlmd::eval_testing
