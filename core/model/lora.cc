#include "core/model/lora.h"

#include <cmath>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/io/safetensors.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

// The module name as transformers >= 4.52 names it in memory (model.language_model.*,
// model.visual.*): adapter patterns may be written against either form.
std::string NewLayoutName(const std::string& name) {
  if (absl::StartsWith(name, "visual.")) return "model." + name;
  if (absl::StartsWith(name, "model.")) return "model.language_model." + name.substr(6);
  return name;
}

bool FullMatch(const std::string& pattern, const std::string& text) {
  try {
    return std::regex_match(text, std::regex(pattern));
  } catch (const std::regex_error&) {
    return false;
  }
}

// PEFT's list rule: the name equals an entry or ends with "." + entry.
bool MatchesList(const std::vector<std::string>& entries, const std::string& name) {
  for (const std::string& e : entries) {
    if (name == e || absl::EndsWith(name, "." + e)) return true;
  }
  return false;
}

// PEFT's pattern-key rule for rank_pattern/alpha_pattern: (.*\.)?(key)$.
template <typename T>
const T* PatternValue(const std::map<std::string, T>& patterns, const std::string& name) {
  for (const auto& [key, value] : patterns) {
    std::string re = "(.*\\.)?(" + key + ")";
    if (FullMatch(re, name) || FullMatch(re, NewLayoutName(name))) return &value;
  }
  return nullptr;
}

Status ParseTargets(const json& j, const std::string& source, LoraConfig* c) {
  if (!j.contains("target_modules") || j["target_modules"].is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": target_modules is missing"));
  }
  const json& t = j["target_modules"];
  if (t.is_string()) {
    c->target_regex = t.get<std::string>();
  } else if (t.is_array()) {
    for (const json& e : t) c->target_modules.push_back(e.get<std::string>());
  } else {
    return absl::InvalidArgumentError(absl::StrCat(source, ": target_modules must be list or str"));
  }
  if (j.contains("exclude_modules") && j["exclude_modules"].is_array()) {
    for (const json& e : j["exclude_modules"]) c->exclude_modules.push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

Status RejectUnsupported(const json& j, const std::string& source) {
  auto truthy = [&](const char* key) {
    return j.contains(key) && !j[key].is_null() &&
           !(j[key].is_boolean() && !j[key].get<bool>()) &&
           !(j[key].is_array() && j[key].empty());
  };
  if (j.contains("peft_type") && !j["peft_type"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": peft_type must be a string"));
  }
  if (j.value("peft_type", std::string("LORA")) != "LORA") {
    return absl::UnimplementedError(absl::StrCat(source, ": only peft_type LORA is supported"));
  }
  for (const char* key : {"use_dora", "modules_to_save", "lora_bias", "layers_to_transform"}) {
    if (truthy(key)) {
      return absl::UnimplementedError(absl::StrCat(source, ": \"", key, "\" is not supported"));
    }
  }
  if (j.contains("fan_in_fan_out") && j["fan_in_fan_out"].is_boolean() &&
      j["fan_in_fan_out"].get<bool>()) {
    return absl::UnimplementedError(absl::StrCat(source, ": fan_in_fan_out is not supported"));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<LoraConfig> LoraConfig::FromJson(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  RETURN_IF_ERROR(RejectUnsupported(j, source));
  LoraConfig c;
  // nlohmann converts 1e300 or 2.5 to int without complaint (the first is undefined behaviour).
  if (j.contains("r") && (!j["r"].is_number_integer() || j["r"].get<int64_t>() < 1 ||
                          j["r"].get<int64_t>() > 65536)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": r must be an integer in [1, 65536], got ", j["r"].dump()));
  }
  try {
    c.r = j.value("r", 8);
    c.lora_alpha = j.value("lora_alpha", 8.0);
    c.lora_dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    c.bias = j.value("bias", std::string("none"));
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
      c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
    }
    if (j.contains("rank_pattern") && j["rank_pattern"].is_object()) {
      c.rank_pattern = j["rank_pattern"].get<std::map<std::string, int>>();
    }
    if (j.contains("alpha_pattern") && j["alpha_pattern"].is_object()) {
      c.alpha_pattern = j["alpha_pattern"].get<std::map<std::string, double>>();
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  if (c.bias != "none") {
    return absl::UnimplementedError(absl::StrCat(source, ": bias \"", c.bias,
                                                 "\" is not supported (only \"none\")"));
  }
  if (c.r <= 0) return absl::InvalidArgumentError(absl::StrCat(source, ": r must be positive"));
  RETURN_IF_ERROR(ParseTargets(j, source, &c));
  return c;
}

std::string LoraConfig::ToJson() const {
  json j;
  j["peft_type"] = "LORA";
  j["task_type"] = task_type;
  j["base_model_name_or_path"] = base_model_name_or_path;
  j["r"] = r;
  j["lora_alpha"] = lora_alpha;
  j["lora_dropout"] = lora_dropout;
  j["use_rslora"] = use_rslora;
  j["use_dora"] = false;
  j["bias"] = bias;
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["target_modules"] = target_regex.empty() ? json(target_modules) : json(target_regex);
  j["exclude_modules"] = exclude_modules.empty() ? json(nullptr) : json(exclude_modules);
  j["rank_pattern"] = rank_pattern;
  j["alpha_pattern"] = alpha_pattern;
  j["modules_to_save"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["revision"] = nullptr;
  return j.dump(2);
}

bool LoraConfig::Targets(const std::string& name) const {
  auto matches = [&](const std::string& n) {
    return target_regex.empty() ? MatchesList(target_modules, n) : FullMatch(target_regex, n);
  };
  auto excluded = [&](const std::string& n) { return MatchesList(exclude_modules, n); };
  if (excluded(name) || excluded(NewLayoutName(name))) return false;
  return matches(name) || matches(NewLayoutName(name));
}

int LoraConfig::RankFor(const std::string& name) const {
  const int* v = PatternValue(rank_pattern, name);
  return v ? *v : r;
}

double LoraConfig::ScaleFor(const std::string& name) const {
  const double* a = PatternValue(alpha_pattern, name);
  double alpha = a ? *a : lora_alpha;
  int rank = RankFor(name);
  return use_rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / rank;
}

namespace {

// Splits "<module>.lora_A.weight" into module and which; false for other keys.
bool ParseLoraKey(const std::string& key, std::string* module, bool* is_a) {
  for (const char* suffix : {".lora_A.weight", ".lora_B.weight"}) {
    if (absl::EndsWith(key, suffix)) {
      *module = CanonicalTensorName(key.substr(0, key.size() - strlen(suffix)));
      *is_a = suffix[6] == 'A';
      return true;
    }
  }
  return false;
}

Status CheckModule(const std::string& dir, const std::string& name, const LoraModule& m,
                   std::pair<int64_t, int64_t> base) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("adapter ", dir, ": module ", name, ": ", what));
  };
  if (!m.a.defined() || !m.b.defined()) return bad("needs both lora_A and lora_B");
  if (m.a.dim() != 2 || m.b.dim() != 2 || m.a.size(0) != m.b.size(1)) {
    return bad("lora_A/lora_B ranks disagree");
  }
  if (m.a.size(1) != base.second || m.b.size(0) != base.first) {
    return bad(absl::StrCat("shapes [", m.b.size(0), "x", m.a.size(1),
                            "] do not match the base layer [", base.first, "x", base.second,
                            "]"));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::shared_ptr<LoraAdapter>> LoraAdapter::Load(const std::string& dir,
                                                         const ModelWeights& model,
                                                         at::ScalarType dtype, at::Device device) {
  auto linears = LinearsByName(model);
  ShapeLookup lookup = [&](const std::string& module)
      -> std::optional<std::pair<int64_t, int64_t>> {
    auto it = linears.find(module);
    if (it == linears.end()) return std::nullopt;
    return std::make_pair(it->second->weight.size(0), it->second->weight.size(1));
  };
  return Load(dir, lookup, dtype, device);
}

StatusOr<std::shared_ptr<LoraAdapter>> LoraAdapter::Load(const std::string& dir,
                                                         const ShapeLookup& base_shape,
                                                         at::ScalarType dtype, at::Device device) {
  std::string config_path = JoinPath(dir, "adapter_config.json");
  ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
  auto adapter = std::make_shared<LoraAdapter>();
  ASSIGN_OR_RETURN(adapter->config, LoraConfig::FromJson(text, config_path));
  std::string weights_path = JoinPath(dir, "adapter_model.safetensors");
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights_path));
  for (const TensorView& t : file->tensors()) {
    std::string module;
    bool is_a = false;
    if (!ParseLoraKey(t.name, &module, &is_a)) {
      return absl::UnimplementedError(absl::StrCat(
          "adapter ", weights_path, ": tensor '", t.name,
          "' is not a lora_A/lora_B weight (modules_to_save and bias are not supported)"));
    }
    if (!base_shape(module)) {
      return absl::InvalidArgumentError(absl::StrCat("adapter ", weights_path, ": tensor '",
                                                     t.name, "' targets unknown module ", module));
    }
    LoraModule& m = adapter->modules[module];
    (is_a ? m.a : m.b) = ToTensor(t, dtype, device);
    m.scale = adapter->config.ScaleFor(module);
  }
  for (const auto& [name, m] : adapter->modules) {
    RETURN_IF_ERROR(CheckModule(dir, name, m, *base_shape(name)));
  }
  if (adapter->modules.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("adapter ", weights_path, " has no LoRA weights"));
  }
  return adapter;
}

Status LoraAdapter::Save(const std::string& dir, at::ScalarType dtype) const {
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  std::vector<SafetensorsWriter::Spec> specs;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  DType file_dtype = dtype == at::kBFloat16 ? DType::kBF16
                     : dtype == at::kHalf   ? DType::kF16
                                            : DType::kF32;
  for (const auto& [module, m] : modules) {
    std::string prefix = "base_model.model." + NewLayoutName(module);
    for (auto [suffix, t] : {std::make_pair(".lora_A.weight", m.a),
                             std::make_pair(".lora_B.weight", m.b)}) {
      at::Tensor c = t.detach().to(at::kCPU, dtype).contiguous();
      specs.push_back({prefix + suffix, file_dtype, c.sizes().vec()});
      tensors.emplace_back(prefix + suffix, c);
    }
  }
  std::sort(specs.begin(), specs.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::sort(tensors.begin(), tensors.end(), [](auto& a, auto& b) { return a.first < b.first; });
  ASSIGN_OR_RETURN(auto writer, SafetensorsWriter::Create(JoinPath(dir, "adapter_model.safetensors"),
                                                          specs, {{"format", "pt"}}));
  for (const auto& [name, t] : tensors) {
    RETURN_IF_ERROR(writer->Write(name, t.data_ptr(), t.numel() * t.element_size()));
  }
  RETURN_IF_ERROR(writer->Finish());
  return WriteFileAtomic(JoinPath(dir, "adapter_config.json"), config.ToJson());
}

LoraContext BuildLoraContext(const std::vector<const LoraAdapter*>& adapters,
                             const std::vector<int64_t>& lengths, at::Device device,
                             double dropout, bool training) {
  LoraContext ctx;
  ctx.dropout = dropout;
  ctx.training = training;
  std::map<const LoraAdapter*, std::vector<int64_t>> rows;
  int64_t begin = 0;
  bool uniform = true;
  for (size_t i = 0; i < adapters.size(); ++i) {
    if (adapters[i] != adapters[0]) uniform = false;
    if (adapters[i] != nullptr) {
      auto& r = rows[adapters[i]];
      for (int64_t j = 0; j < lengths[i]; ++j) r.push_back(begin + j);
    }
    begin += lengths[i];
  }
  for (auto& [adapter, r] : rows) {
    LoraRows binding;
    binding.adapter = adapter;
    if (!uniform) binding.rows = at::tensor(r, at::kLong).to(device);
    ctx.bindings.push_back(std::move(binding));
  }
  return ctx;
}

at::Tensor ApplyLinear(const at::Tensor& x, const LinearWeights& w, const LoraContext* lora) {
  at::Tensor y = at::linear(x, w.weight, w.bias);
  if (lora == nullptr) return y;
  for (const LoraRows& binding : lora->bindings) {
    auto it = binding.adapter->modules.find(w.name);
    if (it == binding.adapter->modules.end()) continue;
    const LoraModule& m = it->second;
    at::Tensor in = binding.rows.defined() ? x.index_select(0, binding.rows) : x;
    if (lora->training && lora->dropout > 0) in = at::dropout(in, lora->dropout, true);
    at::Tensor delta = at::linear(at::linear(in.to(m.a.scalar_type()), m.a), m.b) * m.scale;
    delta = delta.to(y.scalar_type());
    y = binding.rows.defined() ? y.index_add(0, binding.rows, delta) : y + delta;
  }
  return y;
}

std::map<std::string, at::Tensor> MergedWeights(const LoraAdapter& adapter,
                                                const ModelWeights& model) {
  std::map<std::string, at::Tensor> out;
  auto linears = LinearsByName(model);
  for (const auto& [name, m] : adapter.modules) {
    const at::Tensor& base = linears.at(name)->weight;
    // As PEFT's merge: the delta in float32, cast to the weight dtype, then added in that dtype.
    at::Tensor delta = at::matmul(m.b.to(at::kFloat), m.a.to(at::kFloat)) * m.scale;
    out[name] = base + delta.to(base.device(), base.scalar_type());
  }
  return out;
}

}  // namespace vlmd
