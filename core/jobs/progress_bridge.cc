// The one place that maps the worker's progress protocol (core/train: ProgressSink writes one
// JSON object per stdout line with "type": train | eval | checkpoint | state | log) to
// WorkerReport.
//
// INTERIM: the trainio branch (ParseProgressLine) had not landed when this was written, so
// this reads the JSON objects directly with the field names the trainer's sink structs use
// (TrainLog, EvalLog, CheckpointEvent). When trainio is merged, this function becomes a thin
// conversion from ParseProgressLine's result and the JSON reading here goes away.
#include "absl/strings/str_cat.h"
#include "core/jobs/worker_report.h"
#include "nlohmann/json.hpp"

namespace vlmd::jobs {
namespace {

using json = nlohmann::json;

// Numeric fields of a train/eval line that are metrics (not position or timing).
const char* const kTrainMetrics[] = {"loss",          "acc",        "grad_norm",
                                     "learning_rate", "memory_gib", "train_speed"};

std::map<std::string, double> EvalMetrics(const json& j) {
  std::map<std::string, double> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().rfind("eval_", 0) == 0 && it->is_number()) out[it.key()] = it->get<double>();
  }
  return out;
}

WorkerReport FromJson(const json& j, const std::string& type) {
  WorkerReport r;
  r.step = j.value("step", int64_t{0});
  r.max_steps = j.value("max_steps", int64_t{0});
  r.epoch = j.value("epoch", 0.0);
  if (type == "train") {
    r.kind = WorkerReport::Kind::kTrain;
    for (const char* key : kTrainMetrics) {
      if (j.contains(key) && j[key].is_number()) r.metrics[key] = j[key].get<double>();
    }
    r.samples_per_second = j.value("samples_per_second", 0.0);
    r.elapsed_s = j.value("elapsed_s", 0.0);
    r.remaining_s = j.value("remaining_s", 0.0);
  } else if (type == "eval") {
    r.kind = WorkerReport::Kind::kEval;
    r.metrics = EvalMetrics(j);
  } else if (type == "checkpoint") {
    r.kind = WorkerReport::Kind::kCheckpoint;
    r.path = j.value("path", std::string());
    r.best = j.value("best", false);
    r.metrics = j.value("metrics", std::map<std::string, double>());
  } else if (type == "state") {
    r.kind = WorkerReport::Kind::kState;
    r.state = j.value("state", std::string());
    r.message = j.value("message", std::string());
  } else {
    r.kind = WorkerReport::Kind::kLog;
    r.message = j.value("message", j.dump());
  }
  return r;
}

}  // namespace

WorkerReport ParseWorkerLine(const std::string& line) {
  WorkerReport raw;
  raw.kind = WorkerReport::Kind::kLog;
  raw.message = line;
  raw.raw = true;
  if (line.empty() || line[0] != '{') return raw;
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return raw;
  }
  try {
    return FromJson(j, j["type"].get<std::string>());
  } catch (const json::exception&) {
    return raw;
  }
}

}  // namespace vlmd::jobs
