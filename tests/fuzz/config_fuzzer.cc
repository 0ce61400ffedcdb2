// config.json, preprocessor_config.json and generation_config.json parsing on arbitrary text.
// Errors are INVALID_ARGUMENT naming the file; an accepted config survives ToJson -> FromJson
// unchanged and satisfies the invariants the model code relies on (no division by zero, head
// sizes that divide, ids inside the vocabulary).
#include <cstdint>

#include "core/io/model_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace vlmd;

void CheckModel(const std::string& text) {
  StatusOr<ModelConfig> c = ModelConfig::FromJson(text, "config.json");
  if (!c.ok()) {
    FUZZ_CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(c.status().message().find("config.json") != std::string_view::npos);
    return;
  }
  FUZZ_CHECK(c->text.num_attention_heads > 0 && c->text.num_key_value_heads > 0);
  FUZZ_CHECK(c->text.hidden_size % c->text.num_attention_heads == 0);
  FUZZ_CHECK(c->text.num_attention_heads % c->text.num_key_value_heads == 0);
  FUZZ_CHECK(c->vision.num_heads > 0 && c->vision.embed_dim % c->vision.num_heads == 0);
  FUZZ_CHECK(c->image_token_id >= 0 && c->image_token_id < c->text.vocab_size);
  StatusOr<ModelConfig> again = ModelConfig::FromJson(c->ToJson(), "again");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == c->ToJson());
}

void CheckPreprocessor(const std::string& text) {
  StatusOr<PreprocessorConfig> c = PreprocessorConfig::FromJson(text, "preprocessor_config.json");
  if (!c.ok()) {
    FUZZ_CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(c->patch_size > 0 && c->merge_size > 0 && c->temporal_patch_size > 0);
  FUZZ_CHECK(c->min_pixels > 0 && c->min_pixels <= c->max_pixels);
  StatusOr<PreprocessorConfig> again = PreprocessorConfig::FromJson(c->ToJson(), "again");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == c->ToJson());
}

void CheckGeneration(const std::string& text) {
  StatusOr<GenerationConfig> c = GenerationConfig::FromJson(text, "generation_config.json");
  if (!c.ok()) {
    FUZZ_CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  StatusOr<GenerationConfig> again = GenerationConfig::FromJson(c->ToJson(), "again");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == c->ToJson());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(fuzz::AsView(data, size));
  CheckModel(text);
  CheckPreprocessor(text);
  CheckGeneration(text);
  return 0;
}
