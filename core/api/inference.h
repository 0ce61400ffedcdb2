// The inference service as server/ sees it: plain structs in, plain structs out (no torch, no
// protobuf). Models are loaded at start; requests from many threads share them through the
// engine's continuous batching; LoRA adapters load and unload while serving.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/engine/prompt.h"
#include "core/engine/sampling.h"

namespace vlmd::api {

// One model to serve.
struct ModelSpec {
  std::string name;                   // what requests call it
  std::string path;                   // checkpoint directory
  std::string device = "cpu";         // cpu, cuda, cuda:N
  std::string dtype = "auto";         // float32, bfloat16, float16, auto
};

// Limits and sizes of the engine. Every field has a working default.
struct EngineLimits {
  int max_running = 16;               // sequences decoded together (batch size)
  int max_waiting = 64;               // queued requests before RESOURCE_EXHAUSTED
  int64_t max_prompt_tokens = 8192;   // prompt incl. image tokens; over -> INVALID_ARGUMENT
  int max_new_tokens = 4096;          // cap on a request's max_new_tokens
  int64_t kv_cache_tokens = 262144;   // KV budget: sum over running requests of prompt+max_new
  int64_t max_prefill_tokens = 8192;  // prompt tokens admitted into one step
};

// Everything the inference service needs at start.
struct InferenceConfig {
  std::vector<ModelSpec> models;
  EngineLimits limits;
  ImagePolicy images;                 // allowed roots (required for path images) and limits
  std::string tokenizer_fallback;     // tokenizer.json for models without one
};

// A generation request. `prompt.images` hold bytes, or server paths checked against the roots.
struct InferRequest {
  std::string request_id;             // for logs; generated when empty
  std::string model;                  // a served model name (empty = the only/first model)
  std::string adapter;                // a loaded adapter name (empty = base model)
  PromptInput prompt;
  SamplingRequest sampling;
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// Text and tokens produced since the last chunk (streaming).
struct InferChunk {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprob> logprobs;  // when requested, one per token id
};

// Receives a request's output, called from the engine thread: keep the work short.
// OnDone is called exactly once, last; OnChunk never after it.
class InferSink {
 public:
  virtual ~InferSink() = default;
  virtual void OnChunk(const InferChunk& chunk) = 0;
  // The final result (text, tokens, finish reason, usage, timings), or the error that ended it
  // (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE on shutdown, INTERNAL).
  virtual void OnDone(const StatusOr<GenerationResult>& result) = 0;
};

// Lets a caller stop a running request; the engine frees its slot at its next step.
class CancelHandle {
 public:
  virtual ~CancelHandle() = default;
  virtual void Cancel() = 0;
};

struct ModelInfo {
  std::string name, path, device, dtype;
  int64_t vocab_size = 0, hidden_size = 0, num_layers = 0;
  int64_t parameters = 0;
  double load_seconds = 0;
  std::string min_max_pixels;          // e.g. "3136..1003520"
};

struct AdapterInfo {
  std::string name, path, model;
  int rank = 0;
  double alpha = 0;
  std::vector<std::string> target_modules;  // module kinds wrapped, e.g. q_proj, qkv
  int64_t modules = 0;                      // wrapped layers
  std::optional<int64_t> min_pixels, max_pixels;  // stored with a vlmd checkpoint
};

// Counters and gauges for metrics; cheap to read.
struct EngineStats {
  std::string model;
  int64_t running = 0, waiting = 0;
  int64_t kv_tokens_used = 0, kv_tokens_total = 0;
  int64_t last_batch_size = 0;
  int64_t steps = 0;
};

// Observer of finished requests and engine steps (the server feeds Prometheus from it).
class InferenceObserver {
 public:
  virtual ~InferenceObserver() = default;
  // A request ended (successfully or not). `result` is set when it produced output.
  virtual void OnRequestDone(const std::string& model, const std::string& adapter,
                             absl::StatusCode code, const GenerationResult* result) = 0;
  // One engine step ran with `batch` sequences (`prefill_tokens` prompt tokens among them).
  virtual void OnStep(const std::string& model, int batch, int64_t prefill_tokens,
                      double seconds) = 0;
};

// The service. Thread-safe: every method may be called from any thread.
class InferenceService {
 public:
  // Loads every model (may take long); then Ready() is true.
  static StatusOr<std::unique_ptr<InferenceService>> Create(const InferenceConfig& config,
                                                            InferenceObserver* observer);
  virtual ~InferenceService() = default;

  // Validates and prepares the request in the calling thread (tokenize, decode and resize
  // images), then queues it. Errors come back here, before any output: INVALID_ARGUMENT,
  // NOT_FOUND (model/adapter/image file), PERMISSION_DENIED (path outside roots),
  // RESOURCE_EXHAUSTED (queue full), UNAVAILABLE (shutting down). On success the sink gets
  // chunks and exactly one OnDone, and `*cancel` (if given) can stop the request.
  virtual Status Submit(InferRequest request, std::shared_ptr<InferSink> sink,
                        std::shared_ptr<CancelHandle>* cancel) = 0;

  virtual std::vector<ModelInfo> ListModels() const = 0;
  // Loads a PEFT adapter from `path` (checked against the allowed roots) for `model`.
  // ALREADY_EXISTS if the name is taken; errors name the bad file or tensor.
  virtual StatusOr<AdapterInfo> LoadAdapter(const std::string& name, const std::string& path,
                                            const std::string& model) = 0;
  // Unloads; requests already running with it finish first. NOT_FOUND if unknown.
  virtual Status UnloadAdapter(const std::string& name) = 0;
  virtual std::vector<AdapterInfo> ListAdapters() const = 0;
  // Registers a checkpoint directory as a new served model (e.g. a merged model).
  virtual StatusOr<ModelInfo> AddModel(const ModelSpec& spec) = 0;
  virtual std::vector<EngineStats> Stats() const = 0;

  // Stops accepting (Submit -> UNAVAILABLE), lets running requests finish for up to `grace`,
  // then cancels the rest. Blocks until every sink got OnDone.
  virtual void Shutdown(std::chrono::milliseconds grace) = 0;
};

}  // namespace vlmd::api
