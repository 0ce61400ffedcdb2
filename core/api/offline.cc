#include "core/api/offline.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/engine/continuation.h"
#include "core/engine/model_bundle.h"
#include "core/engine/step.h"
#include "core/model/checkpoint_writer.h"
#include "core/model/init_model.h"
#include "core/io/safetensors.h"
#include "nlohmann/json.hpp"

namespace vlmd::api {
namespace {

using json = nlohmann::json;

std::string DirOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

struct Loaded {
  std::shared_ptr<const ModelBundle> bundle;
  std::shared_ptr<LoraAdapter> adapter;
  PreparedPrompt prompt;
  ImageBatch images;
};

StatusOr<Loaded> LoadAndPrepare(const ModelRunOptions& o, const std::string& request_path) {
  Loaded l;
  ModelOptions mo;
  mo.device = o.device;
  mo.dtype = o.dtype;
  ASSIGN_OR_RETURN(l.bundle, ModelBundle::Load(o.model_dir, mo, o.tokenizer_fallback));
  if (!o.adapter_dir.empty()) {
    const Qwen2VL& m = *l.bundle->model;
    // Adapters stay in float32, as PEFT keeps them (autocast_adapter_dtype).
    ASSIGN_OR_RETURN(l.adapter, LoraAdapter::Load(o.adapter_dir, m.weights(), at::kFloat, m.device()));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(request_path));
  ASSIGN_OR_RETURN(PromptInput input, ParsePromptJson(text, request_path, DirOf(request_path)));
  ImagePolicy policy;  // the offline tool reads any path
  ASSIGN_OR_RETURN(l.prompt, PreparePrompt(input, l.bundle->prompt_context(), policy));
  l.images = ToImageBatch(l.prompt.images);
  return l;
}

template <typename T>
OwnedTensor Owned(const at::Tensor& t, DType dtype) {
  at::Tensor c = t.to(at::kCPU).contiguous();
  OwnedTensor o;
  o.dtype = dtype;
  o.shape = c.sizes().vec();
  o.bytes.assign(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(T));
  return o;
}

}  // namespace

StatusOr<std::string> Tokenize(const std::string& tokenizer_path,
                               const std::string& tokenizer_fallback,
                               const std::string& texts_json, const std::string& source) {
  ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(tokenizer_path, tokenizer_fallback));
  json texts = json::parse(texts_json, nullptr, false);
  if (texts.is_discarded() || !texts.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON array of strings"));
  }
  json out = json::array();
  for (const json& t : texts) {
    if (!t.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": every entry must be a string"));
    }
    out.push_back(tokenizer->Encode(t.get<std::string>()));
  }
  return out.dump();
}

Status Dump(const ModelRunOptions& options, const std::string& request_path,
            const std::string& out_path) {
  ASSIGN_OR_RETURN(Loaded l, LoadAndPrepare(options, request_path));
  const Qwen2VL& model = *l.bundle->model;
  c10::InferenceMode guard;
  int64_t delta = 0;
  StepSequence seq = PrefillSequence(model, l.prompt.ids, &l.images, &delta);
  seq.adapter = l.adapter.get();
  at::Tensor hidden = RunStep(model, {seq});
  at::Tensor logits = model.Logits(hidden).to(at::kFloat);
  std::map<std::string, OwnedTensor> out;
  std::vector<int64_t> ids(l.prompt.ids.begin(), l.prompt.ids.end());
  out["input_ids"] = Owned<int64_t>(at::tensor(ids, at::kLong), DType::kI64);
  out["position_ids"] = Owned<int64_t>(
      at::stack({at::tensor(seq.pos_t, at::kLong), at::tensor(seq.pos_h, at::kLong),
                 at::tensor(seq.pos_w, at::kLong)}),
      DType::kI64);
  out["rope_delta"] = Owned<int64_t>(at::tensor(std::vector<int64_t>{delta}, at::kLong), DType::kI64);
  out["logits"] = Owned<float>(logits, DType::kF32);
  if (l.images.pixel_values.defined()) {
    out["pixel_values"] = Owned<float>(l.images.pixel_values, DType::kF32);
    std::vector<int64_t> grid;
    for (const GridThw& g : l.images.grids) grid.insert(grid.end(), g.begin(), g.end());
    out["image_grid_thw"] = Owned<int64_t>(
        at::tensor(grid, at::kLong).view({-1, 3}), DType::kI64);
    std::vector<const LoraAdapter*> adapters(l.images.grids.size(), l.adapter.get());
    if (!l.adapter) adapters.clear();
    at::Tensor embeds = model.EncodeImages(l.images.pixel_values, l.images.grids, adapters);
    out["image_embeds"] = Owned<float>(embeds.to(at::kFloat), DType::kF32);
  }
  return WriteSafetensors(out_path, out);
}

namespace {

json LogprobsJson(const std::vector<TokenLogprob>& lps) {
  json arr = json::array();
  for (const TokenLogprob& lp : lps) {
    json top = json::array();
    for (const auto& [id, v] : lp.top) top.push_back({{"token_id", id}, {"logprob", v}});
    arr.push_back({{"token_id", lp.token_id}, {"logprob", lp.logprob}, {"top", top}});
  }
  return arr;
}

}  // namespace

StatusOr<std::string> Generate(const ModelRunOptions& options, const std::string& request_path,
                               const SamplingRequest& sampling,
                               const std::function<void(const std::string&)>& on_text) {
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Loaded l, LoadAndPrepare(options, request_path));
  const Qwen2VL& model = *l.bundle->model;
  ASSIGN_OR_RETURN(SamplingParams params,
                   ResolveSampling(sampling, l.bundle->generation, 1 << 20));
  c10::InferenceMode guard;
  const int64_t prompt_len = static_cast<int64_t>(l.prompt.ids.size());
  KvCache cache(model.config().text, prompt_len + params.max_new_tokens, model.dtype(),
                model.device());
  Continuation cont(params, l.prompt.ids, l.bundle->tokenizer);
  int64_t delta = 0;
  StepSequence seq = PrefillSequence(model, l.prompt.ids, &l.images, &delta);
  seq.cache = &cache;
  seq.adapter = l.adapter.get();
  int64_t past = 0;
  while (true) {
    at::Tensor hidden = RunStep(model, {seq});
    past += static_cast<int64_t>(seq.ids.size());
    at::Tensor logits = model.Logits(hidden.narrow(0, hidden.size(0) - 1, 1))[0];
    Continuation::Update u = cont.Step(logits);
    if (on_text && !u.text.empty()) on_text(u.text);
    if (cont.finished()) break;
    seq = DecodeSequence(u.token, past, delta);
    seq.cache = &cache;
    seq.adapter = l.adapter.get();
  }
  const GenerationResult& r = cont.result();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  json out = {{"token_ids", r.token_ids},
              {"text", r.text},
              {"finish_reason", FinishReasonName(r.finish_reason)},
              {"usage",
               {{"prompt_tokens", prompt_len},
                {"image_tokens", l.prompt.image_tokens},
                {"completion_tokens", r.usage.completion_tokens}}},
              {"total_ms", ms}};
  if (params.logprobs) out["logprobs"] = LogprobsJson(r.logprobs);
  return out.dump();
}

Status InitModel(const std::string& preset, const std::string& out_dir, uint64_t seed,
                 const std::string& dtype_name, const std::string& tokenizer_fallback) {
  ASSIGN_OR_RETURN(ModelConfig config, PresetConfig(preset));
  std::string dt = dtype_name == "auto" ? (preset == "tiny" ? "float32" : "bfloat16") : dtype_name;
  ASSIGN_OR_RETURN(at::ScalarType dtype, ParseDtype(dt, at::Device(at::kCPU)));
  config.torch_dtype = dt;
  ModelWeights weights = RandomWeights(config, seed, dtype);
  std::vector<TensorSource> sources;
  for (auto& [name, tensor] : NamedTensors(weights, config)) {
    at::Tensor t = tensor;
    sources.push_back({name, t.sizes().vec(), [t] { return t; }});
  }
  RETURN_IF_ERROR(WriteCheckpoint(out_dir, sources, dtype));
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(out_dir, "config.json"), config.ToJson()));
  PreprocessorConfig pre;
  if (preset == "tiny") pre.max_pixels = 200704;  // 256 image tokens: fast on CPU
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(out_dir, "preprocessor_config.json"), pre.ToJson()));
  GenerationConfig gen;
  gen.eos_token_ids = {151645, 151643};
  gen.pad_token_id = 151643;
  gen.bos_token_id = 151643;
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(out_dir, "generation_config.json"), gen.ToJson()));
  if (!tokenizer_fallback.empty()) {
    ASSIGN_OR_RETURN(std::string tok, ReadFile(tokenizer_fallback));
    RETURN_IF_ERROR(WriteFileAtomic(JoinPath(out_dir, "tokenizer.json"), tok));
    std::string cfg_path = JoinPath(DirOf(tokenizer_fallback), "tokenizer_config.json");
    if (PathExists(cfg_path)) {
      ASSIGN_OR_RETURN(std::string cfg, ReadFile(cfg_path));
      RETURN_IF_ERROR(WriteFileAtomic(JoinPath(out_dir, "tokenizer_config.json"), cfg));
    }
  }
  return absl::OkStatus();
}

}  // namespace vlmd::api
