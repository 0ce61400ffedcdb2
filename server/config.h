// `vlmd serve` configuration: a YAML file (deploy/vlmd.yaml documents every key) with
// command-line overrides. Unknown keys are errors that name the key. The functions are pure
// (LoadServeConfig only reads files) and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/api/inference.h"
#include "core/api/jobs.h"
#include "core/base/status.h"

namespace vlmd::server {

// One model to serve (`models.<name>`).
struct ModelEntry {
  std::string name;
  std::string path;            // checkpoint directory (required)
  std::string device = "cpu";  // cpu, cuda, cuda:N
  std::string dtype = "auto";  // float32, bfloat16, float16, auto
};

// One adapter to load at start (`adapters.<name>`).
struct AdapterEntry {
  std::string name;
  std::string path;   // PEFT adapter directory, under an allowed root (required)
  std::string model;  // served model it adapts; empty = the first model
};

// `limits`: sizes and counts that protect the server. Every field has a working default.
struct LimitsConfig {
  int64_t max_request_bytes = 32 << 20;   // gRPC max receive message size
  int max_concurrent_requests = 256;      // inference RPCs in flight; more -> RESOURCE_EXHAUSTED
  int64_t max_image_bytes = 20 << 20;     // encoded size of one image
  int64_t max_image_pixels = 50'000'000;  // width*height of one image before resizing
  int64_t max_images = 16;                // images in one request
  int64_t max_pixels = 12845056;          // largest max_pixels a request may ask for
  int64_t max_prompt_tokens = 8192;       // prompt incl. image tokens
  int max_new_tokens = 4096;              // cap on a request's max_new_tokens
  int max_running = 16;                   // sequences decoded together (batch size)
  int queue_size = 64;                    // requests waiting for a batch slot
  int64_t kv_cache_tokens = 262144;       // KV budget: sum of prompt+max_new over the batch
  int64_t max_prefill_tokens = 8192;      // prompt tokens admitted into one engine step
};

// `tls`: server certificate and, for mutual TLS, the CA that signs client certificates.
struct TlsConfig {
  std::string cert;       // PEM certificate chain; empty = plaintext
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle; set = clients must present a certificate it signed
};

// The permission a bearer token grants. kAdmin includes kInfer.
enum class Role { kInfer = 1, kAdmin = 2 };
// "infer" / "admin".
const char* RoleName(Role role);

// One bearer token (`auth.tokens[]` or an entry of `auth.tokens_file`).
struct TokenEntry {
  std::string name;   // for logs; the token itself is never logged
  std::string token;  // at least 16 characters
  Role role = Role::kInfer;
};

// `auth`: no tokens at all = authentication off (logged loudly at start).
struct AuthConfig {
  std::vector<TokenEntry> tokens;
  std::string tokens_file;  // YAML file with a `tokens:` list of the same form
};

// `training`: the fine-tuning job service (runs when state_dir is set).
struct TrainingConfig {
  std::vector<int> gpus;  // device ids lent to training jobs; the rest serve inference
  int cpu_slots = 1;      // CPU jobs (gpus 0) running at once; 0 = no CPU jobs
  std::string data_root;  // folder of the named data sets (latex-ocr-print/, ...); "" = none
  int max_attempts = 3;   // worker starts per job (resumes after a crash count) before FAILED
};

// Everything `vlmd serve` reads.
struct ServeConfig {
  std::string listen = "127.0.0.1:50051";  // gRPC address; port 0 picks a free port
  std::vector<ModelEntry> models;          // in file order; the first is the default
  std::vector<AdapterEntry> adapters;
  LimitsConfig limits;
  TlsConfig tls;
  AuthConfig auth;
  std::string metrics_listen = "127.0.0.1:9090";  // Prometheus /metrics; empty = off
  std::vector<std::string> allowed_roots;  // image paths and adapter dirs must lie under these
  std::string state_dir;  // jobs database and job directories (created); "" = no jobs
  TrainingConfig training;
  std::string log_level = "info";      // debug, info, warning, error
  double shutdown_grace_seconds = 30;  // running requests may finish for this long
  std::string tokenizer;               // tokenizer.json for models without one
};

// Parses YAML text. `overrides` are "dotted.key=value" strings applied to the document
// before it is read (the value is YAML, so "[a, b]" is a list and an empty value resets the
// key to its default); `source` names the text in
// errors. Errors are INVALID_ARGUMENT naming the source, line and key.
StatusOr<ServeConfig> ParseServeConfig(const std::string& yaml_text, const std::string& source,
                                       const std::vector<std::string>& overrides);

// Reads `path` (empty = no file, only overrides), applies overrides and reads the tokens
// file if one is named. The caller validates (after applying its own flags).
StatusOr<ServeConfig> LoadServeConfig(const std::string& path,
                                      const std::vector<std::string>& overrides);

// Parses a tokens file's text (`tokens:` list). `source` names it in errors.
StatusOr<std::vector<TokenEntry>> ParseTokensFile(const std::string& yaml_text,
                                                  const std::string& source);

// Checks cross-field rules (a model at least, known adapter models, TLS pairs, positive
// limits, valid log level and token roles, no duplicate names or tokens).
Status ValidateServeConfig(const ServeConfig& config);

// The engine's view of the configuration.
api::InferenceConfig ToInferenceConfig(const ServeConfig& config);

// The job service's view of the configuration (state_dir must be set).
api::JobServiceConfig ToJobServiceConfig(const ServeConfig& config);

}  // namespace vlmd::server
