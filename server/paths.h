// Where vlmd finds files it ships with.
#pragma once

#include <string>

namespace vlmd {

// tokenizer.json used for models without one: $VLMD_TOKENIZER, else the copy setup.sh
// installs in the source tree, else /usr/share/vlmd/tokenizer.json; empty if none exists.
std::string DefaultTokenizerPath();

}  // namespace vlmd
