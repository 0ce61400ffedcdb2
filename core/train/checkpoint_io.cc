#include "core/train/checkpoint_io.h"

#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/io/safetensors.h"
#include "core/model/torch_compat.h"
#include "core/model/weights.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

OwnedTensor ToOwned(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU).contiguous();
  OwnedTensor o;
  o.dtype = c.scalar_type() == at::kFloat ? DType::kF32
            : c.scalar_type() == at::kLong ? DType::kI64
                                           : DType::kU8;
  o.shape = c.sizes().vec();
  o.bytes.assign(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return o;
}

Status WriteOptimizer(const std::string& dir, const AdamW& opt) {
  std::map<std::string, OwnedTensor> tensors;
  for (size_t i = 0; i < opt.exp_avg().size(); ++i) {
    tensors[absl::StrCat("exp_avg.", i)] = ToOwned(opt.exp_avg()[i]);
    tensors[absl::StrCat("exp_avg_sq.", i)] = ToOwned(opt.exp_avg_sq()[i]);
  }
  tensors["step"] = ToOwned(at::tensor(std::vector<int64_t>{opt.steps()}, at::kLong));
  return WriteSafetensors(JoinPath(dir, "optimizer.safetensors"), tensors,
                          {{"format", "vlmd-adamw"}, {"version", "1"}});
}

Status WriteRng(const std::string& dir, const at::Device& device) {
  std::map<std::string, OwnedTensor> tensors;
  tensors["cpu"] = ToOwned(compat::GeneratorState(at::Device(at::kCPU)));
  if (device.is_cuda()) tensors["cuda"] = ToOwned(compat::GeneratorState(device));
  return WriteSafetensors(JoinPath(dir, "rng_state.safetensors"), tensors);
}

json ProgressJson(const TrainingState& s) {
  const TrainProgress& p = *s.progress;
  return {{"version", kCheckpointVersion},
          {"global_step", p.global_step},
          {"max_steps", s.max_steps},
          {"epoch", p.epoch},
          {"batch_in_epoch", p.batch_in_epoch},
          {"best_metric", p.has_best ? json(p.best_metric) : json(nullptr)},
          {"best_model_checkpoint", p.best_checkpoint},
          {"checkpoints", p.checkpoints},
          {"metric_for_best_model", s.spec->metric_for_best_model}};
}

std::string AdapterMetaJson(const TrainingState& s) {
  json j = {{"version", kCheckpointVersion},
            {"base_model", s.spec->model},
            {"template", "qwen2-vl"},
            {"system", "You are a helpful assistant."},
            {"min_pixels", s.spec->min_pixels.value_or(s.preprocessor.min_pixels)},
            {"max_pixels", s.spec->max_pixels.value_or(s.preprocessor.max_pixels)},
            {"max_length", s.spec->max_length},
            {"step", s.progress->global_step}};
  return j.dump(2);
}

StatusOr<json> ReadJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  return j;
}

at::Tensor FromView(const TensorView& v, const at::Tensor& like) {
  return ToTensor(v, like.scalar_type(), like.device());
}

Status RestoreAdapter(const std::string& dir, LoraAdapter* adapter) {
  std::string path = JoinPath(dir, "adapter_model.safetensors");
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  at::NoGradGuard no_grad;
  size_t restored = 0;
  for (const TensorView& t : file->tensors()) {
    bool is_a = t.name.size() > 14 && t.name.compare(t.name.size() - 14, 14, ".lora_A.weight") == 0;
    std::string module = CanonicalTensorName(t.name.substr(0, t.name.size() - 14));
    auto it = adapter->modules.find(module);
    if (it == adapter->modules.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": tensor ", t.name, " does not match the job's adapter"));
    }
    at::Tensor& dst = is_a ? it->second.a : it->second.b;
    if (dst.sizes().vec() != t.shape) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": tensor ", t.name,
                                                        " has another shape than the job's"));
    }
    dst.copy_(FromView(t, dst));
    ++restored;
  }
  if (restored != 2 * adapter->modules.size()) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": holds ", restored,
                                                      " LoRA tensors, the job needs ",
                                                      2 * adapter->modules.size()));
  }
  return absl::OkStatus();
}

Status RestoreOptimizer(const std::string& dir, AdamW* opt) {
  std::string path = JoinPath(dir, "optimizer.safetensors");
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  std::vector<at::Tensor> m, v;
  for (size_t i = 0; i < opt->params().size(); ++i) {
    const TensorView* a = file->Find(absl::StrCat("exp_avg.", i));
    const TensorView* b = file->Find(absl::StrCat("exp_avg_sq.", i));
    if (a == nullptr || b == nullptr || a->shape != opt->exp_avg()[i].sizes().vec()) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": state ", i, " missing or misshapen"));
    }
    m.push_back(FromView(*a, opt->exp_avg()[i]));
    v.push_back(FromView(*b, opt->exp_avg_sq()[i]));
  }
  const TensorView* step = file->Find("step");
  if (step == nullptr) return absl::FailedPreconditionError(absl::StrCat(path, ": no step"));
  opt->Restore(std::move(m), std::move(v), *static_cast<const int64_t*>(step->data));
  return absl::OkStatus();
}

void RestoreRng(const std::string& dir, const at::Device& device) {
  auto file = SafetensorsFile::Open(JoinPath(dir, "rng_state.safetensors"));
  if (!file.ok()) return;
  auto set = [&](const char* name, const at::Device& d) {
    const TensorView* v = (*file)->Find(name);
    if (v != nullptr) compat::SetGeneratorState(d, ToTensor(*v, at::kByte, at::kCPU));
  };
  set("cpu", at::Device(at::kCPU));
  if (device.is_cuda()) set("cuda", device);
}

}  // namespace

Status WriteTrainingCheckpoint(const std::string& dir, const TrainingState& s) {
  RETURN_IF_ERROR(MakeDirs(dir, 0750));
  RETURN_IF_ERROR(s.adapter->Save(dir, at::kFloat));
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "vlmd_adapter.json"), AdapterMetaJson(s)));
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "sft_args.json"), s.spec->ToJson()));
  RETURN_IF_ERROR(WriteOptimizer(dir, *s.optimizer));
  json sched = {{"type", s.spec->lr_scheduler_type}, {"last_step", s.progress->global_step},
                {"total_steps", s.max_steps}, {"base_lr", s.spec->learning_rate}};
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "scheduler.json"), sched.dump(2)));
  RETURN_IF_ERROR(WriteRng(dir, s.adapter->modules.begin()->second.a.device()));
  // trainer_state.json last: its presence marks a complete checkpoint.
  return WriteFileAtomic(JoinPath(dir, "trainer_state.json"), ProgressJson(s).dump(2));
}

Status ReadTrainingCheckpoint(const std::string& dir, TrainingState* s) {
  std::string state_path = JoinPath(dir, "trainer_state.json");
  ASSIGN_OR_RETURN(json j, ReadJson(state_path));
  if (j.value("version", 0) != kCheckpointVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        state_path, ": checkpoint version ", j.value("version", 0), ", this vlmd reads ",
        kCheckpointVersion));
  }
  RETURN_IF_ERROR(RestoreAdapter(dir, s->adapter));
  RETURN_IF_ERROR(RestoreOptimizer(dir, s->optimizer));
  TrainProgress& p = *s->progress;
  try {
    p.global_step = j.at("global_step").get<int64_t>();
    p.epoch = j.at("epoch").get<int64_t>();
    p.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
    p.has_best = !j.at("best_metric").is_null();
    if (p.has_best) p.best_metric = j["best_metric"].get<double>();
    p.best_checkpoint = j.at("best_model_checkpoint").get<std::string>();
    p.checkpoints = j.at("checkpoints").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    return absl::FailedPreconditionError(absl::StrCat(state_path, ": ", e.what()));
  }
  RestoreRng(dir, s->adapter->modules.begin()->second.a.device());
  return absl::OkStatus();
}

void RotateCheckpoints(int limit, TrainProgress* p) {
  if (limit <= 0) return;
  while (static_cast<int>(p->checkpoints.size()) > limit) {
    auto victim = p->checkpoints.end();
    for (auto it = p->checkpoints.begin(); it + 1 < p->checkpoints.end(); ++it) {
      if (*it != p->best_checkpoint) {
        victim = it;
        break;
      }
    }
    if (victim == p->checkpoints.end()) return;
    std::string cmd = absl::StrCat("rm -rf '", *victim, "'");
    if (victim->find('\'') == std::string::npos && std::system(cmd.c_str()) != 0) {
      VLMD_LOG(Warning) << "could not delete " << *victim;
    }
    p->checkpoints.erase(victim);
  }
}

double DeviceMemoryGiB(const at::Device& device) {
  if (device.is_cuda()) return compat::CudaPeakMemoryGiB(device.index());
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / (1024.0 * 1024.0);
  }
  return 0.0;
}

}  // namespace vlmd
