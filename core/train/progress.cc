#include "core/train/progress.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using ordered_json = nlohmann::ordered_json;
using Type = ProgressEvent::Type;

constexpr Type kTypes[] = {Type::kTrain, Type::kEval, Type::kCheckpoint,
                           Type::kState, Type::kLog,  Type::kFinish};
constexpr char kEvalPrefix[] = "eval_";
// Eval keys with a field of their own in EvalLog; any other eval_* key is an extra metric.
constexpr const char* kEvalFields[] = {"eval_loss", "eval_acc", "eval_runtime",
                                       "eval_samples_per_second", "eval_steps_per_second"};

void FormatTrain(const TrainLog& t, ordered_json* j) {
  (*j)["step"] = t.step;
  (*j)["max_steps"] = t.max_steps;
  (*j)["epoch"] = t.epoch;
  (*j)["loss"] = t.loss;
  (*j)["acc"] = t.acc;
  (*j)["grad_norm"] = t.grad_norm;
  (*j)["learning_rate"] = t.learning_rate;
  (*j)["memory_gib"] = t.memory_gib;
  (*j)["train_speed"] = t.train_speed;
  (*j)["samples_per_second"] = t.samples_per_second;
  (*j)["elapsed_s"] = t.elapsed_s;
  (*j)["remaining_s"] = t.remaining_s;
}

void FormatEval(const EvalLog& e, ordered_json* j) {
  (*j)["step"] = e.step;
  (*j)["max_steps"] = e.max_steps;
  (*j)["epoch"] = e.epoch;
  (*j)["eval_loss"] = e.eval_loss;
  (*j)["eval_acc"] = e.eval_acc;
  (*j)["eval_runtime"] = e.eval_runtime;
  (*j)["eval_samples_per_second"] = e.eval_samples_per_second;
  (*j)["eval_steps_per_second"] = e.eval_steps_per_second;
  for (const auto& [name, value] : e.extra) (*j)[kEvalPrefix + name] = value;
}

void FormatBody(const ProgressEvent& event, ordered_json* j) {
  switch (event.type) {
    case Type::kTrain:
      return FormatTrain(event.train, j);
    case Type::kEval:
      return FormatEval(event.eval, j);
    case Type::kCheckpoint:
      (*j)["step"] = event.checkpoint.step;
      (*j)["path"] = event.checkpoint.path;
      (*j)["best"] = event.checkpoint.best;
      (*j)["metrics"] = event.checkpoint.metrics;
      return;
    case Type::kState:
      (*j)["state"] = event.state;
      (*j)["message"] = event.message;
      return;
    case Type::kLog:
      (*j)["line"] = event.message;
      return;
    case Type::kFinish:
      (*j)["best_model_checkpoint"] = event.summary.best_model_checkpoint;
      (*j)["best_metric"] = event.summary.best_metric;
      (*j)["last_model_checkpoint"] = event.summary.last_model_checkpoint;
      (*j)["train_time"] = event.summary.train_time;
      (*j)["memory"] = event.summary.memory;
      return;
  }
}

// Readers for one field; a missing key keeps the default. They throw json::type_error for a
// value of the wrong type, which ParseProgressLine turns into INVALID_ARGUMENT.
void Get(const ordered_json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  *out = it->is_null() ? std::numeric_limits<double>::quiet_NaN() : it->get<double>();
}
template <typename T>
void Get(const ordered_json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it != j.end()) *out = it->get<T>();
}

void ParseTrain(const ordered_json& j, TrainLog* t) {
  Get(j, "step", &t->step);
  Get(j, "max_steps", &t->max_steps);
  Get(j, "epoch", &t->epoch);
  Get(j, "loss", &t->loss);
  Get(j, "acc", &t->acc);
  Get(j, "grad_norm", &t->grad_norm);
  Get(j, "learning_rate", &t->learning_rate);
  Get(j, "memory_gib", &t->memory_gib);
  Get(j, "train_speed", &t->train_speed);
  Get(j, "samples_per_second", &t->samples_per_second);
  Get(j, "elapsed_s", &t->elapsed_s);
  Get(j, "remaining_s", &t->remaining_s);
}

bool IsEvalField(const std::string& key) {
  for (const char* field : kEvalFields) {
    if (key == field) return true;
  }
  return false;
}

void ParseEval(const ordered_json& j, EvalLog* e) {
  Get(j, "step", &e->step);
  Get(j, "max_steps", &e->max_steps);
  Get(j, "epoch", &e->epoch);
  Get(j, "eval_loss", &e->eval_loss);
  Get(j, "eval_acc", &e->eval_acc);
  Get(j, "eval_runtime", &e->eval_runtime);
  Get(j, "eval_samples_per_second", &e->eval_samples_per_second);
  Get(j, "eval_steps_per_second", &e->eval_steps_per_second);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().rfind(kEvalPrefix, 0) != 0 || IsEvalField(it.key())) continue;
    double value = 0;
    Get(j, it.key().c_str(), &value);
    e->extra[it.key().substr(sizeof(kEvalPrefix) - 1)] = value;
  }
}

// False when "metrics" is present but not an object.
bool ParseMetrics(const ordered_json& j, std::map<std::string, double>* metrics) {
  auto it = j.find("metrics");
  if (it == j.end()) return true;
  if (!it->is_object()) return false;
  for (auto m = it->begin(); m != it->end(); ++m) Get(*it, m.key().c_str(), &(*metrics)[m.key()]);
  return true;
}

// False for a malformed body that the JSON readers do not catch.
bool ParseBody(const ordered_json& j, ProgressEvent* event) {
  switch (event->type) {
    case Type::kTrain:
      ParseTrain(j, &event->train);
      return true;
    case Type::kEval:
      ParseEval(j, &event->eval);
      return true;
    case Type::kCheckpoint:
      Get(j, "step", &event->checkpoint.step);
      Get(j, "path", &event->checkpoint.path);
      Get(j, "best", &event->checkpoint.best);
      return ParseMetrics(j, &event->checkpoint.metrics);
    case Type::kState:
      Get(j, "state", &event->state);
      Get(j, "message", &event->message);
      return true;
    case Type::kLog:
      Get(j, "line", &event->message);
      return true;
    case Type::kFinish:
      Get(j, "best_model_checkpoint", &event->summary.best_model_checkpoint);
      Get(j, "best_metric", &event->summary.best_metric);
      Get(j, "last_model_checkpoint", &event->summary.last_model_checkpoint);
      Get(j, "train_time", &event->summary.train_time);
      Get(j, "memory", &event->summary.memory);
      return true;
  }
  return false;
}

}  // namespace

const char* ProgressTypeName(ProgressEvent::Type type) {
  switch (type) {
    case Type::kTrain:
      return "train";
    case Type::kEval:
      return "eval";
    case Type::kCheckpoint:
      return "checkpoint";
    case Type::kState:
      return "state";
    case Type::kLog:
      return "log";
    case Type::kFinish:
      return "finish";
  }
  return "log";
}

std::string FormatProgressLine(const ProgressEvent& event) {
  ordered_json j;
  j["type"] = ProgressTypeName(event.type);
  FormatBody(event, &j);
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

StatusOr<ProgressEvent> ParseProgressLine(std::string_view line) {
  ordered_json j = ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("not a progress line (not a JSON object)");
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    return absl::InvalidArgumentError("not a progress line (no string \"type\")");
  }
  ProgressEvent event;
  bool known = false;
  for (Type t : kTypes) {
    if (*type == ProgressTypeName(t)) event.type = t, known = true;
  }
  if (!known) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown progress line type '", type->get<std::string>(), "'"));
  }
  std::string problem;
  try {
    if (!ParseBody(j, &event)) problem = "\"metrics\" is not an object";
  } catch (const nlohmann::json::exception& e) {
    problem = e.what();
  }
  if (!problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad ", ProgressTypeName(event.type), " progress line: ", problem));
  }
  return event;
}

void ProgressSink::Write(const ProgressEvent& event) {
  const std::string line = FormatProgressLine(event) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  const bool ok =
      std::fwrite(line.data(), 1, line.size(), out_) == line.size() && std::fflush(out_) == 0;
  if (!ok && !write_failed_) {
    write_failed_ = true;
    VLMD_LOG(Warning) << "cannot write progress lines: " << std::strerror(errno);
  }
}

void ProgressSink::OnTrainLog(const TrainLog& log) {
  ProgressEvent event;
  event.type = Type::kTrain;
  event.train = log;
  Write(event);
}

void ProgressSink::OnEvalLog(const EvalLog& log) {
  ProgressEvent event;
  event.type = Type::kEval;
  event.eval = log;
  Write(event);
}

void ProgressSink::OnCheckpoint(const CheckpointEvent& checkpoint) {
  ProgressEvent event;
  event.type = Type::kCheckpoint;
  event.checkpoint = checkpoint;
  Write(event);
}

void ProgressSink::OnState(const std::string& state, const std::string& message) {
  ProgressEvent event;
  event.type = Type::kState;
  event.state = state;
  event.message = message;
  Write(event);
}

void ProgressSink::OnLogLine(const std::string& line) {
  ProgressEvent event;
  event.type = Type::kLog;
  event.message = line;
  Write(event);
}

void ProgressSink::OnFinish(const TrainSummary& summary) {
  ProgressEvent event;
  event.type = Type::kFinish;
  event.summary = summary;
  Write(event);
}

}  // namespace vlmd
