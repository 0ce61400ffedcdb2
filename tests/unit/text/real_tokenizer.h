// The Qwen2 vocabulary shared by the text tests, loaded once per test binary.
#pragma once

#include <memory>
#include <string>

#include "core/text/tokenizer.h"
#include "gtest/gtest.h"

namespace vlmd {

inline std::string RealTokenizerPath() {
  return std::string(VLMD_SOURCE_DIR) + "/third_party/tokenizer/tokenizer.json";
}

// The tokenizer, or null after recording a test failure that says how to install it.
inline std::shared_ptr<const Tokenizer> RealTokenizer() {
  static const StatusOr<std::shared_ptr<const Tokenizer>>* const kLoaded =
      new StatusOr<std::shared_ptr<const Tokenizer>>(Tokenizer::FromFile(RealTokenizerPath()));
  if (!kLoaded->ok()) {
    ADD_FAILURE() << kLoaded->status() << " (scripts/setup.sh installs the vocabulary)";
    return nullptr;
  }
  return **kLoaded;
}

}  // namespace vlmd
