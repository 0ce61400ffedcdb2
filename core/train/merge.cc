#include "core/train/merge.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/io/model_config.h"
#include "core/io/safetensors.h"
#include "core/model/checkpoint_writer.h"
#include "core/model/lora.h"
#include "core/model/qwen2vl.h"
#include "core/model/weights.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

constexpr const char* kCopiedFiles[] = {"tokenizer.json",          "tokenizer_config.json",
                                        "vocab.json",              "merges.txt",
                                        "special_tokens_map.json", "chat_template.json",
                                        "chat_template.jinja",     "generation_config.json"};

StatusOr<at::ScalarType> OutputDtype(const std::string& name, const Checkpoint& base) {
  if (name != "auto") return ParseDtype(name, at::Device(at::kCPU));
  for (const std::string& n : base.Names()) {
    if (absl::EndsWith(n, ".weight")) return ToScalarType(base.Find(n)->dtype);
  }
  return at::kBFloat16;
}

const char* DtypeName(at::ScalarType t) {
  return t == at::kFloat ? "float32" : t == at::kHalf ? "float16" : "bfloat16";
}

// The merged value of one base tensor: W + (B A s), computed as PEFT's merge does on a model
// loaded in the output dtype (the delta in float32, cast to that dtype, then added).
at::Tensor MergedTensor(const TensorView& view, const LoraModule* module, at::ScalarType dtype) {
  at::Tensor w = ToTensor(view, dtype, at::kCPU);
  if (module == nullptr) return w;
  at::Tensor delta = at::matmul(module->b.to(at::kFloat), module->a.to(at::kFloat)) * module->scale;
  return w.reshape({delta.size(0), delta.size(1)}) + delta.to(dtype);
}

Status WriteConfigs(const MergeOptions& o, at::ScalarType dtype, const std::string& adapter_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(o.base_dir, "config.json")));
  json config = json::parse(text, nullptr, false);
  if (config.is_discarded()) return absl::InvalidArgumentError("base config.json is invalid JSON");
  config["torch_dtype"] = DtypeName(dtype);
  if (config.contains("dtype")) config["dtype"] = DtypeName(dtype);
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(o.output_dir, "config.json"), config.dump(2)));
  ASSIGN_OR_RETURN(PreprocessorConfig pre, PreprocessorConfig::LoadOrDefault(o.base_dir));
  StatusOr<std::string> meta_text = ReadFile(JoinPath(adapter_dir, "vlmd_adapter.json"));
  if (meta_text.ok()) {
    json meta = json::parse(*meta_text, nullptr, false);
    if (meta.is_object()) {
      pre.min_pixels = meta.value("min_pixels", pre.min_pixels);
      pre.max_pixels = meta.value("max_pixels", pre.max_pixels);
    }
  }
  if (o.min_pixels) pre.min_pixels = *o.min_pixels;
  if (o.max_pixels) pre.max_pixels = *o.max_pixels;
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(o.output_dir, "preprocessor_config.json"), pre.ToJson()));
  for (const char* name : kCopiedFiles) {
    std::string src = JoinPath(o.base_dir, name);
    if (!PathExists(src)) continue;
    ASSIGN_OR_RETURN(std::string data, ReadFile(src));
    RETURN_IF_ERROR(WriteFileAtomic(JoinPath(o.output_dir, name), data));
  }
  json provenance = {{"base_model", o.base_dir}, {"adapter", adapter_dir}, {"tool", "vlmd merge"}};
  return WriteFileAtomic(JoinPath(o.output_dir, "vlmd_merge.json"), provenance.dump(2));
}

}  // namespace

StatusOr<MergeStats> MergeAdapter(const MergeOptions& o) {
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::Load(o.base_dir));
  ASSIGN_OR_RETURN(auto base, Checkpoint::Open(o.base_dir));
  std::map<std::string, std::string> by_canonical;  // canonical -> name in the checkpoint
  for (const std::string& n : base->Names()) by_canonical[CanonicalTensorName(n)] = n;
  LoraAdapter::ShapeLookup shapes = [&](const std::string& module)
      -> std::optional<std::pair<int64_t, int64_t>> {
    auto it = by_canonical.find(module + ".weight");
    if (it == by_canonical.end()) return std::nullopt;
    const TensorView* v = base->Find(it->second);
    return std::make_pair(v->shape[0], v->numel() / v->shape[0]);
  };
  ASSIGN_OR_RETURN(auto adapter, LoraAdapter::Load(o.adapter_dir, shapes, at::kFloat, at::kCPU));
  ASSIGN_OR_RETURN(at::ScalarType dtype, OutputDtype(o.dtype, *base));
  RETURN_IF_ERROR(MakeDirs(o.output_dir, 0755));
  MergeStats stats;
  std::vector<TensorSource> sources;
  for (const auto& [canonical, original] : by_canonical) {
    if (canonical == "lm_head.weight" && config.text.tie_word_embeddings) continue;
    const TensorView* view = base->Find(original);
    std::string module = absl::EndsWith(canonical, ".weight")
                             ? canonical.substr(0, canonical.size() - 7) : "";
    auto it = adapter->modules.find(module);
    const LoraModule* m = it == adapter->modules.end() ? nullptr : &it->second;
    stats.merged_modules += m != nullptr;
    std::vector<int64_t> shape = view->shape;
    if (canonical == "visual.patch_embed.proj.weight") {  // transformers 5.17 loads 5-D only
      const VisionConfig& v = config.vision;
      shape = {v.embed_dim, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size};
    }
    sources.push_back({canonical, shape, [view, m, shape, dtype] {
                         return MergedTensor(*view, m, dtype).reshape(shape);
                       }});
    stats.bytes += view->numel() * static_cast<int64_t>(c10::elementSize(dtype));
  }
  if (stats.merged_modules != static_cast<int64_t>(adapter->modules.size())) {
    return absl::InvalidArgumentError(absl::StrCat("adapter ", o.adapter_dir, " wraps ",
                                                   adapter->modules.size(), " modules, ",
                                                   stats.merged_modules, " found in the base"));
  }
  stats.tensors = static_cast<int64_t>(sources.size());
  RETURN_IF_ERROR(WriteCheckpoint(o.output_dir, sources, dtype, o.max_shard_bytes));
  RETURN_IF_ERROR(WriteConfigs(o, dtype, o.adapter_dir));
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace vlmd
