#include "core/api/inference.h"

#include <sys/stat.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/api/inference_internal.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/engine/engine.h"
#include "core/engine/model_bundle.h"
#include "nlohmann/json.hpp"

namespace vlmd::api {
namespace {

class EngineCancel : public CancelHandle {
 public:
  EngineCancel(std::weak_ptr<EngineRequest> request, Engine* engine)
      : request_(std::move(request)), engine_(engine) {}
  void Cancel() override {
    if (auto r = request_.lock()) {
      r->cancelled = true;
      engine_->Wake();
    }
  }

 private:
  std::weak_ptr<EngineRequest> request_;
  Engine* engine_;
};

struct ServedModel {
  ModelSpec spec;
  ModelInfo info;
  std::shared_ptr<const ModelBundle> bundle;
  std::unique_ptr<Engine> engine;
};

struct ServedAdapter {
  AdapterInfo info;
  std::shared_ptr<const LoraAdapter> adapter;
};

// Module kinds an adapter wraps ("q_proj", "qkv", "mlp.0", ...), for listings.
std::vector<std::string> ModuleKinds(const LoraAdapter& a) {
  std::set<std::string> kinds;
  for (const auto& [name, m] : a.modules) {
    size_t dot = name.find_last_of('.');
    std::string kind = dot == std::string::npos ? name : name.substr(dot + 1);
    if (kind == "0" || kind == "2") kind = "mlp." + kind;
    kinds.insert(kind);
  }
  return {kinds.begin(), kinds.end()};
}

// Pixel limits a vlmd checkpoint stores next to its adapter (vlmd_adapter.json), if any.
void ReadStoredPixels(const std::string& dir, AdapterInfo* info) {
  StatusOr<std::string> text = ReadFile(JoinPath(dir, "vlmd_adapter.json"));
  if (!text.ok()) return;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  if (j.contains("min_pixels") && j["min_pixels"].is_number_integer()) {
    info->min_pixels = j["min_pixels"].get<int64_t>();
  }
  if (j.contains("max_pixels") && j["max_pixels"].is_number_integer()) {
    info->max_pixels = j["max_pixels"].get<int64_t>();
  }
}

class InferenceServiceImpl : public InferenceService {
 public:
  InferenceServiceImpl(InferenceConfig config, InferenceObserver* observer)
      : config_(std::move(config)), observer_(observer) {}

  ~InferenceServiceImpl() override { Shutdown(std::chrono::milliseconds(0)); }

  Status Submit(InferRequest request, std::shared_ptr<InferSink> sink,
                std::shared_ptr<CancelHandle>* cancel) override;
  std::vector<ModelInfo> ListModels() const override;
  StatusOr<AdapterInfo> LoadAdapter(const std::string& name, const std::string& path,
                                    const std::string& model) override;
  Status UnloadAdapter(const std::string& name) override;
  std::vector<AdapterInfo> ListAdapters() const override;
  StatusOr<ModelInfo> AddModel(const ModelSpec& spec) override;
  std::vector<EngineStats> Stats() const override;
  void Shutdown(std::chrono::milliseconds grace) override;

  // For inference_internal.h.
  std::shared_ptr<const ModelBundle> Bundle(const std::string& name) const {
    StatusOr<ServedModel*> model = FindModel(name);
    return model.ok() ? (*model)->bundle : nullptr;
  }
  std::shared_ptr<const LoraAdapter> Adapter(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = adapters_.find(name);
    return it == adapters_.end() ? nullptr : it->second.adapter;
  }

 private:
  StatusOr<ServedModel*> FindModel(const std::string& name) const;
  StatusOr<std::shared_ptr<EngineRequest>> Prepare(InferRequest& request, ServedModel& model,
                                                   std::shared_ptr<InferSink> sink);

  const InferenceConfig config_;
  InferenceObserver* const observer_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ServedModel>> models_;  // guarded by mu_
  std::vector<std::string> model_order_;                        // guarded by mu_
  std::map<std::string, ServedAdapter> adapters_;                // guarded by mu_
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> next_id_{1};
};

StatusOr<ServedModel*> InferenceServiceImpl::FindModel(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (name.empty() && !model_order_.empty()) return models_.at(model_order_.front()).get();
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  }
  return it->second.get();
}

StatusOr<std::shared_ptr<EngineRequest>> InferenceServiceImpl::Prepare(
    InferRequest& request, ServedModel& model, std::shared_ptr<InferSink> sink) {
  auto r = std::make_shared<EngineRequest>();
  r->id = request.request_id.empty() ? absl::StrCat("req-", next_id_++) : request.request_id;
  r->sink = std::move(sink);
  r->deadline = request.deadline;
  if (!request.adapter.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = adapters_.find(request.adapter);
    if (it == adapters_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown adapter '", request.adapter, "'"));
    }
    if (it->second.info.model != model.spec.name) {
      return absl::InvalidArgumentError(absl::StrCat("adapter '", request.adapter,
                                                     "' belongs to model '", it->second.info.model,
                                                     "', not '", model.spec.name, "'"));
    }
    r->adapter = it->second.adapter;
    r->adapter_name = request.adapter;
    // Pixel limits trained with the adapter apply unless the request sets its own.
    if (!request.prompt.min_pixels) request.prompt.min_pixels = it->second.info.min_pixels;
    if (!request.prompt.max_pixels) request.prompt.max_pixels = it->second.info.max_pixels;
  }
  ASSIGN_OR_RETURN(r->prompt,
                   PreparePrompt(request.prompt, model.bundle->prompt_context(), config_.images));
  int64_t prompt_tokens = static_cast<int64_t>(r->prompt.ids.size());
  if (prompt_tokens > config_.limits.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt has ", prompt_tokens, " tokens (", r->prompt.image_tokens,
        " of them image tokens), over the limit of ", config_.limits.max_prompt_tokens));
  }
  ASSIGN_OR_RETURN(r->params, ResolveSampling(request.sampling, model.bundle->generation,
                                              config_.limits.max_new_tokens));
  r->images = ToImageBatch(r->prompt.images);
  r->prompt.images.clear();  // the tensors above hold the pixels now
  return r;
}

Status InferenceServiceImpl::Submit(InferRequest request, std::shared_ptr<InferSink> sink,
                                    std::shared_ptr<CancelHandle>* cancel) {
  if (stopped_) return absl::UnavailableError("server is shutting down");
  ASSIGN_OR_RETURN(ServedModel * model, FindModel(request.model));
  ASSIGN_OR_RETURN(auto prepared, Prepare(request, *model, std::move(sink)));
  if (cancel != nullptr) *cancel = std::make_shared<EngineCancel>(prepared, model->engine.get());
  return model->engine->Enqueue(std::move(prepared));
}

std::vector<ModelInfo> InferenceServiceImpl::ListModels() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelInfo> out;
  for (const std::string& name : model_order_) out.push_back(models_.at(name)->info);
  return out;
}

StatusOr<AdapterInfo> InferenceServiceImpl::LoadAdapter(const std::string& name,
                                                        const std::string& path,
                                                        const std::string& model_name) {
  if (name.empty()) return absl::InvalidArgumentError("adapter name is empty");
  ASSIGN_OR_RETURN(ServedModel * model, FindModel(model_name));
  std::string dir = path;
  if (config_.images.allowed_roots) {
    ASSIGN_OR_RETURN(dir, ResolveUnderRoots(path, *config_.images.allowed_roots));
    // The files inside must not lead out of the roots either (a symlinked adapter_config.json
    // could point at any file the server can read, or at a FIFO or device).
    for (const char* file : {"adapter_config.json", "adapter_model.safetensors"}) {
      RETURN_IF_ERROR(
          ResolveUnderRoots(JoinPath(dir, file), *config_.images.allowed_roots).status());
    }
  }
  // Only regular files: reading a FIFO would block this thread forever, a device never end.
  for (const char* file : {"adapter_config.json", "adapter_model.safetensors"}) {
    struct stat st;
    const std::string p = JoinPath(dir, file);
    if (::stat(p.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("adapter file ", p, " is not a regular file"));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (adapters_.count(name)) {
      return absl::AlreadyExistsError(absl::StrCat("adapter '", name, "' is already loaded"));
    }
  }
  const Qwen2VL& m = *model->bundle->model;
  ASSIGN_OR_RETURN(std::shared_ptr<LoraAdapter> adapter,
                   LoraAdapter::Load(dir, m.weights(), at::kFloat, m.device()));
  adapter->name = name;
  ServedAdapter served;
  served.adapter = adapter;
  served.info = {name, dir, model->spec.name, adapter->config.r, adapter->config.lora_alpha,
                 ModuleKinds(*adapter), static_cast<int64_t>(adapter->modules.size()),
                 std::nullopt, std::nullopt};
  ReadStoredPixels(dir, &served.info);
  std::lock_guard<std::mutex> lock(mu_);
  if (!adapters_.emplace(name, served).second) {
    return absl::AlreadyExistsError(absl::StrCat("adapter '", name, "' is already loaded"));
  }
  VLMD_LOG(Info) << "loaded adapter " << name << " from " << dir << " for model "
                 << model->spec.name;
  return served.info;
}

Status InferenceServiceImpl::UnloadAdapter(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (adapters_.erase(name) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown adapter '", name, "'"));
  }
  return absl::OkStatus();
}

std::vector<AdapterInfo> InferenceServiceImpl::ListAdapters() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AdapterInfo> out;
  for (const auto& [name, a] : adapters_) out.push_back(a.info);
  return out;
}

StatusOr<ModelInfo> InferenceServiceImpl::AddModel(const ModelSpec& spec) {
  if (spec.name.empty()) return absl::InvalidArgumentError("model name is empty");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (models_.count(spec.name)) {
      return absl::AlreadyExistsError(absl::StrCat("model '", spec.name, "' is already served"));
    }
  }
  auto served = std::make_unique<ServedModel>();
  served->spec = spec;
  auto start = std::chrono::steady_clock::now();
  ModelOptions options;
  options.device = spec.device;
  options.dtype = spec.dtype;
  ASSIGN_OR_RETURN(served->bundle, ModelBundle::Load(spec.path, options, config_.tokenizer_fallback));
  const Qwen2VL& m = *served->bundle->model;
  ModelInfo& info = served->info;
  info.name = spec.name;
  info.path = spec.path;
  info.device = spec.device;
  info.dtype = c10::toString(m.dtype());
  info.vocab_size = m.config().text.vocab_size;
  info.hidden_size = m.config().text.hidden_size;
  info.num_layers = m.config().text.num_hidden_layers;
  for (const auto& [name, t] : NamedTensors(m.weights(), m.config())) info.parameters += t.numel();
  info.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  info.min_max_pixels = absl::StrCat(served->bundle->preprocessor.min_pixels, "..",
                                     served->bundle->preprocessor.max_pixels);
  served->engine = std::make_unique<Engine>(spec.name, served->bundle, config_.limits, observer_);
  VLMD_LOG(Info) << "serving model " << spec.name << " from " << spec.path << " on "
                 << spec.device << " (" << info.dtype << ", " << info.parameters
                 << " parameters, loaded in " << info.load_seconds << " s)";
  std::lock_guard<std::mutex> lock(mu_);
  if (!models_.emplace(spec.name, std::move(served)).second) {
    return absl::AlreadyExistsError(absl::StrCat("model '", spec.name, "' is already served"));
  }
  model_order_.push_back(spec.name);
  return info;
}

std::vector<EngineStats> InferenceServiceImpl::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EngineStats> out;
  for (const std::string& name : model_order_) out.push_back(models_.at(name)->engine->Stats());
  return out;
}

void InferenceServiceImpl::Shutdown(std::chrono::milliseconds grace) {
  stopped_ = true;
  std::vector<Engine*> engines;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, m] : models_) engines.push_back(m->engine.get());
  }
  for (Engine* e : engines) e->Shutdown(grace);
}

}  // namespace

std::shared_ptr<const ModelBundle> ServedBundle(const InferenceService& service,
                                                const std::string& name) {
  auto* impl = dynamic_cast<const InferenceServiceImpl*>(&service);
  return impl != nullptr ? impl->Bundle(name) : nullptr;
}

std::shared_ptr<const LoraAdapter> ServedAdapter(const InferenceService& service,
                                                 const std::string& name) {
  auto* impl = dynamic_cast<const InferenceServiceImpl*>(&service);
  return impl != nullptr ? impl->Adapter(name) : nullptr;
}

StatusOr<std::unique_ptr<InferenceService>> InferenceService::Create(
    const InferenceConfig& config, InferenceObserver* observer) {
  auto service = std::make_unique<InferenceServiceImpl>(config, observer);
  for (const ModelSpec& spec : config.models) {
    StatusOr<ModelInfo> info = service->AddModel(spec);
    if (!info.ok()) {
      return absl::Status(info.status().code(), absl::StrCat("model '", spec.name, "' (", spec.path,
                                                             "): ", info.status().message()));
    }
  }
  return std::unique_ptr<InferenceService>(std::move(service));
}

}  // namespace vlmd::api
