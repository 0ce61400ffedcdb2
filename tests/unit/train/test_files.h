// Files for the train-data tests: a temporary directory that cleans up after itself, text and
// PNG files written into it, and the real Qwen2 tokenizer.
#pragma once

#include <string>

namespace vlmd::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` joined to the directory (no file is created).
  std::string Path(const std::string& name) const;
  // Writes `text` to `name` (creating parent folders); returns the full path.
  std::string Write(const std::string& name, const std::string& text) const;
  // Writes a width x height RGB PNG with a diagonal gradient; returns the full path.
  std::string WritePng(const std::string& name, int width, int height) const;

 private:
  std::string path_;
};

}  // namespace vlmd::testing
