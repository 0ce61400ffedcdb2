#include "core/jobs/worker_report.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/file_util.h"
#include "nlohmann/json.hpp"

namespace vlmd::jobs {
namespace {

using api::JobEvent;
using api::JobStatus;

std::string FormatMetrics(const std::map<std::string, double>& metrics) {
  std::string out;
  for (const auto& [k, v] : metrics) absl::StrAppend(&out, out.empty() ? "" : " ", k, "=", v);
  return out;
}

void AddCheckpoint(const WorkerReport& r, JobStatus* s) {
  std::vector<api::CheckpointInfo> kept;
  for (api::CheckpointInfo& c : s->checkpoints) {
    if (c.path != r.path && PathExists(c.path)) kept.push_back(std::move(c));
  }
  api::CheckpointInfo info;
  info.step = r.step;
  info.path = r.path;
  info.metrics = r.metrics;
  info.best = r.best;
  if (r.best) {
    for (api::CheckpointInfo& c : kept) c.best = false;
    s->best_checkpoint = r.path;
  }
  kept.push_back(std::move(info));
  s->checkpoints = std::move(kept);
}

}  // namespace

NewEvent ApplyWorkerReport(const WorkerReport& r, JobStatus* s) {
  NewEvent event;
  switch (r.kind) {
    case WorkerReport::Kind::kTrain:
      s->step = r.step;
      if (r.max_steps > 0) s->max_steps = r.max_steps;
      s->epoch = r.epoch;
      s->train_metrics = r.metrics;
      s->samples_per_second = r.samples_per_second;
      s->elapsed_s = r.elapsed_s;
      s->remaining_s = r.remaining_s;
      event.type = JobEvent::Type::kTrainMetrics;
      event.message =
          absl::StrCat("step ", r.step, "/", s->max_steps, " ", FormatMetrics(r.metrics));
      break;
    case WorkerReport::Kind::kEval:
      s->eval_metrics = r.metrics;
      event.type = JobEvent::Type::kEvalMetrics;
      event.message = absl::StrCat("eval at step ", r.step, " ", FormatMetrics(r.metrics));
      break;
    case WorkerReport::Kind::kCheckpoint:
      AddCheckpoint(r, s);
      event.type = JobEvent::Type::kCheckpoint;
      event.message = absl::StrCat("checkpoint ", r.path, r.best ? " (best)" : "");
      break;
    case WorkerReport::Kind::kState:
      if (r.max_steps > 0) s->max_steps = r.max_steps;
      event.type = JobEvent::Type::kProgress;
      event.message = absl::StrCat("worker: ", r.state, r.message.empty() ? "" : ": ", r.message);
      break;
    case WorkerReport::Kind::kLog:
      event.type = JobEvent::Type::kLog;
      event.message = r.message;
      break;
  }
  return event;
}

std::string LastCompleteCheckpoint(const std::string& job_dir) {
  DIR* dir = opendir(job_dir.c_str());
  if (dir == nullptr) return "";
  int64_t best_step = -1;
  std::string best;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name.rfind("checkpoint-", 0) != 0) continue;
    char* end = nullptr;
    long long step = std::strtoll(name.c_str() + 11, &end, 10);
    if (end == name.c_str() + 11 || *end != '\0') continue;
    std::string path = JoinPath(job_dir, name);
    if (step > best_step && PathExists(JoinPath(path, "trainer_state.json"))) {
      best_step = step;
      best = path;
    }
  }
  closedir(dir);
  return best;
}

std::string LastLoggedWorkerState(const std::string& job_dir) {
  constexpr long kTail = 1 << 16;
  FILE* f = std::fopen(JoinPath(job_dir, "progress.jsonl").c_str(), "rb");
  if (f == nullptr) return "";
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  long start = size > kTail ? size - kTail : 0;
  std::string tail(static_cast<size_t>(size - start), '\0');
  std::fseek(f, start, SEEK_SET);
  tail.resize(std::fread(tail.data(), 1, tail.size(), f));
  std::fclose(f);
  std::string state;
  size_t pos = 0;
  while (pos < tail.size()) {
    size_t nl = tail.find('\n', pos);
    if (nl == std::string::npos) nl = tail.size();
    WorkerReport r = ParseWorkerLine(tail.substr(pos, nl - pos));
    if (r.kind == WorkerReport::Kind::kState) state = r.state;
    pos = nl + 1;
  }
  return state;
}

TrainerStateInfo ReadTrainerState(const std::string& checkpoint_dir) {
  TrainerStateInfo info;
  StatusOr<std::string> text = ReadFile(JoinPath(checkpoint_dir, "trainer_state.json"));
  if (!text.ok()) return info;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return info;
  auto number = [&](const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
  };
  info.global_step = number("global_step");
  info.max_steps = number("max_steps");
  if (j.contains("best_model_checkpoint") && j["best_model_checkpoint"].is_string()) {
    info.best_checkpoint = j["best_model_checkpoint"].get<std::string>();
  }
  return info;
}

}  // namespace vlmd::jobs
