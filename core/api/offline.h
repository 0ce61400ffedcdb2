// The offline tool behind `vlmd tokenize|dump|generate|init-model` (torch-free facade: server/
// includes this; the implementation lives in core and links torch privately).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/base/status.h"
#include "core/engine/sampling.h"

namespace vlmd::api {

// Which model to run and where.
struct ModelRunOptions {
  std::string model_dir;
  std::string device = "cpu";
  std::string dtype = "auto";
  std::string adapter_dir;          // optional PEFT LoRA adapter
  std::string tokenizer_fallback;   // tokenizer.json used when the model has none
};

// `vlmd tokenize`: `texts_json` is a JSON array of strings; returns a JSON array of id arrays.
StatusOr<std::string> Tokenize(const std::string& tokenizer_path,
                               const std::string& tokenizer_fallback,
                               const std::string& texts_json, const std::string& source);

// `vlmd dump`: one forward pass of REQ.json; writes pixel_values, image_grid_thw, input_ids,
// position_ids, logits (and image_embeds) to a safetensors file.
Status Dump(const ModelRunOptions& options, const std::string& request_path,
            const std::string& out_path);

// `vlmd generate`: returns the JSON object {"token_ids", "text", "finish_reason", "logprobs",
// "usage"}. `on_text` (optional) receives text pieces as they are produced.
StatusOr<std::string> Generate(const ModelRunOptions& options, const std::string& request_path,
                               const SamplingRequest& sampling,
                               const std::function<void(const std::string&)>& on_text = {});

// `vlmd init-model`: a random checkpoint of a preset shape with tokenizer, preprocessor and
// generation configs. dtype "auto" = float32 for tiny, bfloat16 otherwise.
Status InitModel(const std::string& preset, const std::string& out_dir, uint64_t seed,
                 const std::string& dtype, const std::string& tokenizer_fallback);

}  // namespace vlmd::api
