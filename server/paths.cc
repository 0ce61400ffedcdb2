#include "server/paths.h"

#include <cstdlib>

#include "core/base/file_util.h"

namespace vlmd {

std::string DefaultTokenizerPath() {
  if (const char* env = std::getenv("VLMD_TOKENIZER"); env != nullptr && *env) return env;
  for (const std::string& p : {std::string(VLMD_SOURCE_DIR "/third_party/tokenizer/tokenizer.json"),
                               std::string("/usr/share/vlmd/tokenizer.json")}) {
    if (PathExists(p)) return p;
  }
  return "";
}

}  // namespace vlmd
