#include "core/train/job_spec.h"

#include <cmath>
#include <limits>
#include <set>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;

// Calls v(name, field) for every persisted field; one list serves reading and writing.
template <typename Spec, typename V>
void VisitFields(Spec& s, V&& v) {
  v("version", s.version);
  v("name", s.name);
  v("model", s.model);
  v("output_dir", s.output_dir);
  v("dataset", s.datasets);
  v("val_dataset", s.val_datasets);
  v("dataset_test_ratio", s.split_ratio);
  v("seed", s.seed);
  v("shuffle", s.shuffle);
  v("max_length", s.max_length);
  v("min_pixels", s.min_pixels);
  v("max_pixels", s.max_pixels);
  v("lora_rank", s.lora_rank);
  v("lora_alpha", s.lora_alpha);
  v("lora_dropout", s.lora_dropout);
  v("target_modules", s.target_modules);
  v("use_rslora", s.use_rslora);
  v("init_adapter", s.init_adapter);
  v("learning_rate", s.learning_rate);
  v("lr_scheduler_type", s.lr_scheduler_type);
  v("warmup_ratio", s.warmup_ratio);
  v("weight_decay", s.weight_decay);
  v("adam_beta1", s.adam_beta1);
  v("adam_beta2", s.adam_beta2);
  v("adam_epsilon", s.adam_epsilon);
  v("max_grad_norm", s.max_grad_norm);
  v("batch_size", s.batch_size);
  v("gradient_accumulation_steps", s.gradient_accumulation_steps);
  v("eval_batch_size", s.eval_batch_size);
  v("num_train_epochs", s.num_train_epochs);
  v("max_steps", s.max_steps);
  v("gradient_checkpointing", s.gradient_checkpointing);
  v("dtype", s.dtype);
  v("eval_steps", s.eval_steps);
  v("save_steps", s.save_steps);
  v("logging_steps", s.logging_steps);
  v("save_total_limit", s.save_total_limit);
  v("metric_for_best_model", s.metric_for_best_model);
  v("greater_is_better", s.greater_is_better);
  v("predict_with_generate", s.predict_with_generate);
  v("generation_eval", s.generation_eval);
  v("generation_max_new_tokens", s.generation_max_new_tokens);
  v("generation_max_samples", s.generation_max_samples);
  v("generation_batch_size", s.generation_batch_size);
  v("gpus", s.gpus);
  v("processes", s.processes);
  v("priority", s.priority);
  v("resume_from_checkpoint", s.resume_from_checkpoint);
}

struct Reader {
  const json& j;
  std::string source;
  Status status = absl::OkStatus();
  std::set<std::string> seen;

  template <typename T>
  void operator()(const char* key, T& field) {
    seen.insert(key);
    if (!status.ok() || !j.contains(key) || j[key].is_null()) return;
    std::string problem;
    try {
      problem = Assign(j[key], field);
    } catch (const json::exception&) {
      problem = WrongType(j[key]);
    }
    if (!problem.empty()) {
      status = absl::InvalidArgumentError(absl::StrCat(source, ": field \"", key, "\" ", problem));
    }
  }
  static std::string WrongType(const json& v) {
    return absl::StrCat("has the wrong type (", v.type_name(), ")");
  }
  // Converts exactly: an integer field takes a JSON integer that fits (not 2.5, not 1e300, not
  // true), a bool field a JSON boolean, a double field any JSON number. Returns "" or the
  // problem. Strings and lists go through nlohmann, which throws on a mismatch.
  template <typename T>
  static std::string Assign(const json& v, T& field) {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return WrongType(v);
      field = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) return WrongType(v);
      const bool fits = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                            : v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                                  v.get<int64_t>() <= std::numeric_limits<T>::max();
      if (!fits) return absl::StrCat("is out of range (", v.dump(), ")");
      field = v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                     : static_cast<T>(v.get<int64_t>());
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return WrongType(v);
      field = v.get<T>();
    } else {
      field = v.get<T>();
    }
    return "";
  }
  template <typename T>
  static std::string Assign(const json& v, std::optional<T>& field) {
    T value{};
    std::string problem = Assign(v, value);
    if (problem.empty()) field = value;
    return problem;
  }
  // A single string is accepted where a list is expected ("dataset": "a.jsonl").
  static std::string Assign(const json& v, std::vector<std::string>& field) {
    field = v.is_string() ? std::vector<std::string>{v.get<std::string>()}
                          : v.get<std::vector<std::string>>();
    return "";
  }
};

struct Writer {
  json& j;
  template <typename T>
  void operator()(const char* key, const T& field) {
    j[key] = field;
  }
  template <typename T>
  void operator()(const char* key, const std::optional<T>& field) {
    j[key] = field ? json(*field) : json(nullptr);
  }
};

Status Check(bool ok, const std::string& field, const std::string& rule) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("job spec: ", field, " ", rule));
}

const std::set<std::string>& GenerationMetrics() {
  static const std::set<std::string> kNames = {"exact_match", "edit_distance",
                                               "edit_distance_token", "bleu"};
  return kNames;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status ValidateGeneration(const JobSpec& s) {
  RETURN_IF_ERROR(Check(s.generation_eval == "every_eval" || s.generation_eval == "end",
                        "generation_eval", "must be every_eval or end"));
  RETURN_IF_ERROR(Check(s.generation_max_new_tokens >= 1 && s.generation_max_new_tokens <= 65536,
                        "generation_max_new_tokens", "must be in [1, 65536]"));
  RETURN_IF_ERROR(Check(s.generation_max_samples >= 0, "generation_max_samples", "must be >= 0"));
  RETURN_IF_ERROR(Check(s.generation_batch_size >= 1 && s.generation_batch_size <= 1024,
                        "generation_batch_size", "must be in [1, 1024]"));
  const std::string metric = s.BestMetricName();
  if (metric == "loss" || metric == "acc") return absl::OkStatus();
  RETURN_IF_ERROR(Check(GenerationMetrics().count(metric) > 0, "metric_for_best_model",
                        "must be loss, acc, exact_match, edit_distance, edit_distance_token or "
                        "bleu"));
  return Check(s.predict_with_generate && s.generation_eval == "every_eval",
               "metric_for_best_model",
               absl::StrCat("\"", metric,
                            "\" needs predict_with_generate with generation_eval "
                            "every_eval (generation metrics at every evaluation)"));
}

}  // namespace

StatusOr<JobSpec> JobSpec::FromJson(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  JobSpec spec;
  Reader reader{j, source};
  VisitFields(spec, reader);
  RETURN_IF_ERROR(reader.status);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!reader.seen.count(it.key())) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": unknown field \"", it.key(), "\""));
    }
  }
  if (spec.version < kOldestJobSpecVersion || spec.version > kJobSpecVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(source, ": job spec version ", spec.version, ", this vlmd reads versions ",
                     kOldestJobSpecVersion, " to ", kJobSpecVersion));
  }
  spec.version = kJobSpecVersion;  // older versions only lack fields, whose defaults are off
  return spec;
}

std::string JobSpec::ToJson() const {
  json j = json::object();
  Writer writer{j};
  VisitFields(*this, writer);
  return j.dump(2);
}

Status JobSpec::Validate() const {
  RETURN_IF_ERROR(Check(!model.empty(), "model", "is required"));
  RETURN_IF_ERROR(Check(!datasets.empty(), "dataset", "needs at least one data set"));
  RETURN_IF_ERROR(Check(split_ratio >= 0 && split_ratio < 1, "dataset_test_ratio", "must be in [0, 1)"));
  RETURN_IF_ERROR(Check(max_length >= 16, "max_length", "must be >= 16"));
  RETURN_IF_ERROR(Check(lora_rank >= 1 && lora_rank <= 1024, "lora_rank", "must be in [1, 1024]"));
  RETURN_IF_ERROR(Check(lora_alpha > 0, "lora_alpha", "must be > 0"));
  RETURN_IF_ERROR(Check(lora_dropout >= 0 && lora_dropout < 1, "lora_dropout", "must be in [0, 1)"));
  RETURN_IF_ERROR(Check(!target_modules.empty(), "target_modules", "must not be empty"));
  RETURN_IF_ERROR(Check(learning_rate > 0 && learning_rate < 1, "learning_rate", "must be in (0, 1)"));
  RETURN_IF_ERROR(Check(lr_scheduler_type == "cosine" || lr_scheduler_type == "linear" ||
                            lr_scheduler_type == "constant",
                        "lr_scheduler_type", "must be cosine, linear or constant"));
  RETURN_IF_ERROR(Check(warmup_ratio >= 0 && warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"));
  RETURN_IF_ERROR(Check(weight_decay >= 0, "weight_decay", "must be >= 0"));
  RETURN_IF_ERROR(Check(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1,
                        "adam_beta1/adam_beta2", "must be in [0, 1)"));
  RETURN_IF_ERROR(Check(adam_epsilon > 0, "adam_epsilon", "must be > 0"));
  RETURN_IF_ERROR(Check(max_grad_norm >= 0, "max_grad_norm", "must be >= 0"));
  RETURN_IF_ERROR(Check(batch_size >= 1 && batch_size <= 1024, "batch_size", "must be in [1, 1024]"));
  RETURN_IF_ERROR(Check(gradient_accumulation_steps >= 0, "gradient_accumulation_steps", "must be >= 0"));
  RETURN_IF_ERROR(Check(eval_batch_size >= 1, "eval_batch_size", "must be >= 1"));
  RETURN_IF_ERROR(Check(num_train_epochs > 0 || max_steps > 0, "num_train_epochs",
                        "must be > 0 unless max_steps is set"));
  RETURN_IF_ERROR(Check(eval_steps >= 1 && save_steps >= 1 && logging_steps >= 1,
                        "eval_steps/save_steps/logging_steps", "must be >= 1"));
  RETURN_IF_ERROR(Check(save_total_limit >= 0, "save_total_limit", "must be >= 0"));
  RETURN_IF_ERROR(Check(gpus >= 0 && gpus <= 64, "gpus", "must be in [0, 64]"));
  RETURN_IF_ERROR(Check(processes >= 0 && processes <= 64, "processes", "must be in [0, 64]"));
  RETURN_IF_ERROR(Check(gpus == 0 || processes == 0 || processes == gpus, "processes",
                        "must be 0 or equal to gpus for a GPU job (one rank per GPU)"));
  RETURN_IF_ERROR(Check(dtype == "auto" || dtype == "float32" || dtype == "bfloat16" ||
                            dtype == "float16",
                        "dtype", "must be auto, float32, bfloat16 or float16"));
  RETURN_IF_ERROR(ValidateGeneration(*this));
  if (min_pixels || max_pixels) {
    RETURN_IF_ERROR(Check(min_pixels.value_or(1) > 0 &&
                              max_pixels.value_or(INT64_MAX) >= min_pixels.value_or(1),
                          "min_pixels/max_pixels", "need 0 < min_pixels <= max_pixels"));
  }
  return absl::OkStatus();
}

std::string JobSpec::BestMetricName() const {
  const std::string prefix = "eval_";
  if (metric_for_best_model.rfind(prefix, 0) != 0) return metric_for_best_model;
  return metric_for_best_model.substr(prefix.size());
}

bool JobSpec::GreaterIsBetter() const {
  return greater_is_better.value_or(!EndsWith(BestMetricName(), "loss"));
}

bool JobSpec::GenerationAt(bool final) const {
  if (!predict_with_generate) return false;
  return generation_eval == "every_eval" || final;
}

int JobSpec::WorldSize() const { return gpus > 0 ? gpus : std::max(1, processes); }

int JobSpec::EffectiveAccumulation(int world_size) const {
  if (gradient_accumulation_steps > 0) return gradient_accumulation_steps;
  int ws = std::max(1, world_size);
  return static_cast<int>(std::ceil(16.0 / batch_size / ws));
}

}  // namespace vlmd
