// Catalogue rows for adapter management: names, directories that escape the root, and
// adapter_config.json / adapter_model.safetensors files that are missing, malformed, symlinked
// out of the root or do not fit the model.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "nlohmann/json.hpp"
#include "tests/e2e/catalogue/catalogue.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e::catalogue {
namespace {

using grpc::StatusCode;
namespace fs = std::filesystem;

std::string FixtureDir() { return SourceDir() + "/tests/fixtures/lora/llm_r4"; }

// A safetensors file from a header object and a data section.
std::string Safetensors(const nlohmann::json& header, const std::string& data) {
  std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 255);
  return out + h + data;
}

std::string Tensor(const std::string& name, std::vector<int> shape) {
  size_t n = 4;
  for (int d : shape) n *= d;
  nlohmann::json h;
  h[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, n}}};
  return Safetensors(h, std::string(n, '\0'));
}

// An adapter directory: the fixture's files with one replaced (or removed when empty).
void MakeAdapter(const std::string& dir, const std::string& config, const std::string& weights) {
  fs::create_directories(dir);
  std::string fixture_config = ReadFile(FixtureDir() + "/adapter_config.json");
  std::string fixture_weights = ReadFile(FixtureDir() + "/adapter_model.safetensors");
  if (config != "-")
    WriteFile(dir + "/adapter_config.json", config.empty() ? fixture_config : config);
  if (weights != "-") {
    WriteFile(dir + "/adapter_model.safetensors", weights.empty() ? fixture_weights : weights);
  }
}

std::string ConfigWith(const std::string& key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(ReadFile(FixtureDir() + "/adapter_config.json"));
  if (value.is_discarded()) {
    j.erase(key);
  } else {
    j[key] = value;
  }
  return j.dump();
}

BadCase Load(const std::string& name, const std::string& adapter, const std::string& path,
             const std::string& model, StatusCode code, std::vector<std::string> message) {
  v1::LoadAdapterRequest r;
  r.set_name(adapter);
  r.set_path(path);
  r.set_model(model);
  return Case("LoadAdapter: " + name, kLoadAdapter, r, code, message);
}

}  // namespace

void PrepareAdapterFiles(const Env& env) {
  const std::string a = env.root + "/adapters";
  const std::string q = "q_proj";
  MakeAdapter(a + "/good", "", "");
  fs::create_directories(a + "/empty");
  MakeAdapter(a + "/config_only", "", "-");
  MakeAdapter(a + "/weights_only", "-", "");
  MakeAdapter(a + "/bad_json", "{\"r\": 4,", "");
  MakeAdapter(a + "/array_json", "[1, 2]", "");
  MakeAdapter(a + "/r_string", ConfigWith("r", "4"), "");
  MakeAdapter(a + "/r_zero", ConfigWith("r", 0), "");
  MakeAdapter(a + "/r_negative", ConfigWith("r", -4), "");
  MakeAdapter(a + "/r_huge_float", ConfigWith("r", 1e300), "");
  MakeAdapter(a + "/r_fraction", ConfigWith("r", 2.5), "");
  MakeAdapter(a + "/alpha_string", ConfigWith("lora_alpha", "eight"), "");
  MakeAdapter(a + "/bias_all", ConfigWith("bias", "all"), "");
  MakeAdapter(a + "/dora", ConfigWith("use_dora", true), "");
  MakeAdapter(a + "/prefix_tuning", ConfigWith("peft_type", "PREFIX_TUNING"), "");
  MakeAdapter(a + "/peft_type_number", ConfigWith("peft_type", 3), "");
  MakeAdapter(a + "/modules_to_save", ConfigWith("modules_to_save", {"lm_head"}), "");
  MakeAdapter(a + "/no_targets", ConfigWith("target_modules", nlohmann::json::value_t::discarded),
              "");
  MakeAdapter(a + "/targets_number", ConfigWith("target_modules", 7), "");
  MakeAdapter(a + "/weights_empty", "", std::string());
  WriteFile(a + "/weights_empty/adapter_model.safetensors", "");
  std::string weights = ReadFile(FixtureDir() + "/adapter_model.safetensors");
  MakeAdapter(a + "/weights_truncated", "", weights.substr(0, weights.size() / 2));
  MakeAdapter(a + "/weights_garbage", "", "this is not a safetensors file");
  MakeAdapter(a + "/weights_huge_header", "",
              std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
  MakeAdapter(a + "/weights_no_tensors", "", Safetensors(nlohmann::json::object(), ""));
  MakeAdapter(a + "/weights_not_lora", "", Tensor("model.embed_tokens.weight", {4, 4}));
  MakeAdapter(a + "/weights_unknown_module", "",
              Tensor("base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight", {4, 64}));
  MakeAdapter(a + "/weights_a_only", "",
              Tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {4, 64}));
  fs::create_directories(a + "/config_symlink");
  WriteFile(env.outside + "/adapter_config.json", ReadFile(FixtureDir() + "/adapter_config.json"));
  symlink((env.outside + "/adapter_config.json").c_str(),
          (a + "/config_symlink/adapter_config.json").c_str());
  WriteFile(a + "/config_symlink/adapter_model.safetensors", weights);
  fs::create_directories(a + "/weights_symlink");
  WriteFile(a + "/weights_symlink/adapter_config.json",
            ReadFile(FixtureDir() + "/adapter_config.json"));
  symlink("/etc/passwd", (a + "/weights_symlink/adapter_model.safetensors").c_str());
  fs::create_directories(a + "/config_fifo");
  mkfifo((a + "/config_fifo/adapter_config.json").c_str(), 0600);
  WriteFile(a + "/config_fifo/adapter_model.safetensors", weights);
  MakeAdapter(env.outside + "/adapter", "", "");
  symlink((env.outside + "/adapter").c_str(), (a + "/escape").c_str());
  (void)q;
}

void AddAdapterCases(const Env& env, std::vector<BadCase>* out) {
  const std::string a = env.root + "/adapters";
  const std::string& m = env.adapter_model;
  const std::string outside = "outside the allowed roots";
  out->push_back(Load("empty name", "", a + "/good", m, StatusCode::INVALID_ARGUMENT,
                      {"adapter name is empty"}));
  out->push_back(
      Load("empty path", "x", "", m, StatusCode::INVALID_ARGUMENT, {"adapter path is empty"}));
  out->push_back(Load("name already loaded", "fixture", a + "/good", m, StatusCode::ALREADY_EXISTS,
                      {"fixture", "already loaded"}));
  out->push_back(Load("unknown model", "x", a + "/good", "no-such-model", StatusCode::NOT_FOUND,
                      {"no-such-model"}));
  struct PathCase {
    const char* name;
    std::string path;
    StatusCode code;
    std::vector<std::string> message;
  };
  const std::vector<PathCase> paths = {
      {"directory outside the root",
       env.outside + "/adapter",
       StatusCode::PERMISSION_DENIED,
       {outside}},
      {"dot-dot out of the root",
       a + "/../../outside/adapter",
       StatusCode::PERMISSION_DENIED,
       {outside}},
      {"symlinked directory escaping the root",
       a + "/escape",
       StatusCode::PERMISSION_DENIED,
       {outside}},
      {"/etc", "/etc", StatusCode::PERMISSION_DENIED, {outside}},
      {"relative path", "adapters/good", StatusCode::PERMISSION_DENIED, {outside}},
      {"missing directory", a + "/none", StatusCode::NOT_FOUND, {"not found"}},
      {"a file, not a directory",
       env.root + "/tiny.png",
       StatusCode::NOT_FOUND,
       {"adapter_config.json"}},
      {"empty directory", a + "/empty", StatusCode::NOT_FOUND, {"adapter_config.json"}},
      {"no adapter_config.json",
       a + "/weights_only",
       StatusCode::NOT_FOUND,
       {"adapter_config.json"}},
      {"no adapter_model.safetensors",
       a + "/config_only",
       StatusCode::NOT_FOUND,
       {"adapter_model.safetensors"}},
      {"adapter_config.json symlinked out of the root",
       a + "/config_symlink",
       StatusCode::PERMISSION_DENIED,
       {"adapter_config.json", outside}},
      {"adapter_model.safetensors symlinked to /etc/passwd",
       a + "/weights_symlink",
       StatusCode::PERMISSION_DENIED,
       {"adapter_model.safetensors", outside}},
      {"adapter_config.json is a FIFO",
       a + "/config_fifo",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_config.json", "not a regular file"}},
      {"malformed JSON",
       a + "/bad_json",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_config.json", "not a JSON object"}},
      {"JSON array", a + "/array_json", StatusCode::INVALID_ARGUMENT, {"not a JSON object"}},
      {"r is a string",
       a + "/r_string",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_config.json", "r must be an integer"}},
      {"r = 0", a + "/r_zero", StatusCode::INVALID_ARGUMENT, {"r must be an integer"}},
      {"r < 0", a + "/r_negative", StatusCode::INVALID_ARGUMENT, {"r must be an integer"}},
      {"r = 1e300", a + "/r_huge_float", StatusCode::INVALID_ARGUMENT, {"r must be an integer"}},
      {"r = 2.5", a + "/r_fraction", StatusCode::INVALID_ARGUMENT, {"r must be an integer"}},
      {"lora_alpha is a string",
       a + "/alpha_string",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_config.json"}},
      {"bias 'all'", a + "/bias_all", StatusCode::UNIMPLEMENTED, {"bias"}},
      {"DoRA", a + "/dora", StatusCode::UNIMPLEMENTED, {"use_dora"}},
      {"peft_type PREFIX_TUNING",
       a + "/prefix_tuning",
       StatusCode::UNIMPLEMENTED,
       {"peft_type LORA"}},
      {"peft_type is a number",
       a + "/peft_type_number",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_config.json", "peft_type"}},
      {"modules_to_save", a + "/modules_to_save", StatusCode::UNIMPLEMENTED, {"modules_to_save"}},
      {"no target_modules", a + "/no_targets", StatusCode::INVALID_ARGUMENT, {"target_modules"}},
      {"target_modules is a number",
       a + "/targets_number",
       StatusCode::INVALID_ARGUMENT,
       {"target_modules"}},
      {"empty weights file",
       a + "/weights_empty",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_model.safetensors", "no header"}},
      {"truncated weights",
       a + "/weights_truncated",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_model.safetensors"}},
      {"garbage weights",
       a + "/weights_garbage",
       StatusCode::INVALID_ARGUMENT,
       {"adapter_model.safetensors", "header"}},
      {"weights header length 2^63",
       a + "/weights_huge_header",
       StatusCode::INVALID_ARGUMENT,
       {"header length"}},
      {"weights without tensors",
       a + "/weights_no_tensors",
       StatusCode::INVALID_ARGUMENT,
       {"no LoRA weights"}},
      {"a tensor that is not LoRA",
       a + "/weights_not_lora",
       StatusCode::UNIMPLEMENTED,
       {"model.embed_tokens.weight", "not a lora_A/lora_B"}},
      {"a tensor for a module the model lacks",
       a + "/weights_unknown_module",
       StatusCode::INVALID_ARGUMENT,
       {"unknown module"}},
      {"lora_A without lora_B",
       a + "/weights_a_only",
       StatusCode::INVALID_ARGUMENT,
       {"needs both lora_A and lora_B"}},
  };
  for (const PathCase& p : paths) {
    out->push_back(Load(p.name, "x", p.path, m, p.code, p.message));
  }
  out->push_back(Load("adapter for another model's shapes", "x", a + "/good", env.model,
                      StatusCode::INVALID_ARGUMENT,
                      {"do not match the base layer|unknown module"}));
  for (const std::string& name :
       std::vector<std::string>{"", "ghost", "../fixture", "FIXTURE", std::string(2000, 'n')}) {
    v1::UnloadAdapterRequest r;
    r.set_name(name);
    out->push_back(Case("UnloadAdapter: '" + name.substr(0, 20) + "'", kUnloadAdapter, r,
                        name.empty() ? StatusCode::INVALID_ARGUMENT : StatusCode::NOT_FOUND,
                        {name.empty() ? "adapter name is empty" : "unknown adapter"}));
  }
}

}  // namespace vlmd::e2e::catalogue
