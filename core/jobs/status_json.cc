#include "core/jobs/status_json.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vlmd::jobs {
namespace {

using json = nlohmann::json;
using api::JobEvent;
using api::JobState;
using api::JobStatus;

json CheckpointsToJson(const std::vector<api::CheckpointInfo>& checkpoints) {
  json out = json::array();
  for (const api::CheckpointInfo& c : checkpoints) {
    out.push_back({{"step", c.step}, {"path", c.path}, {"metrics", c.metrics}, {"best", c.best}});
  }
  return out;
}

std::vector<api::CheckpointInfo> CheckpointsFromJson(const json& j) {
  std::vector<api::CheckpointInfo> out;
  for (const json& c : j) {
    api::CheckpointInfo info;
    info.step = c.value("step", int64_t{0});
    info.path = c.value("path", std::string());
    info.metrics = c.value("metrics", std::map<std::string, double>());
    info.best = c.value("best", false);
    out.push_back(std::move(info));
  }
  return out;
}

json ProgressJson(const JobStatus& s) {
  return {{"step", s.step},
          {"max_steps", s.max_steps},
          {"epoch", s.epoch},
          {"train_metrics", s.train_metrics},
          {"eval_metrics", s.eval_metrics},
          {"samples_per_second", s.samples_per_second},
          {"elapsed_s", s.elapsed_s},
          {"remaining_s", s.remaining_s},
          {"checkpoints", CheckpointsToJson(s.checkpoints)},
          {"best_checkpoint", s.best_checkpoint},
          {"job_dir", s.job_dir},
          {"train_samples", s.train_samples},
          {"val_samples", s.val_samples},
          {"skipped_samples", s.skipped_samples},
          {"validation_report", s.validation_report}};
}

void ProgressFrom(const json& j, JobStatus* s) {
  s->step = j.value("step", int64_t{0});
  s->max_steps = j.value("max_steps", int64_t{0});
  s->epoch = j.value("epoch", 0.0);
  s->train_metrics = j.value("train_metrics", std::map<std::string, double>());
  s->eval_metrics = j.value("eval_metrics", std::map<std::string, double>());
  s->samples_per_second = j.value("samples_per_second", 0.0);
  s->elapsed_s = j.value("elapsed_s", 0.0);
  s->remaining_s = j.value("remaining_s", 0.0);
  s->checkpoints = CheckpointsFromJson(j.value("checkpoints", json::array()));
  s->best_checkpoint = j.value("best_checkpoint", std::string());
  s->job_dir = j.value("job_dir", std::string());
  s->train_samples = j.value("train_samples", int64_t{0});
  s->val_samples = j.value("val_samples", int64_t{0});
  s->skipped_samples = j.value("skipped_samples", int64_t{0});
  s->validation_report = j.value("validation_report", std::string());
}

constexpr const char* kStateNames[] = {"VALIDATING", "QUEUED", "RUNNING",
                                       "SUCCEEDED",  "FAILED", "CANCELLED"};
constexpr const char* kEventNames[] = {"state", "progress", "train", "eval", "checkpoint", "log"};

}  // namespace

std::string ProgressToJson(const JobStatus& status) { return ProgressJson(status).dump(); }

Status ProgressFromJson(const std::string& text, const std::string& source, JobStatus* status) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(source, ": progress snapshot is not a JSON object"));
  }
  try {
    ProgressFrom(j, status);
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(source, ": progress snapshot: ", e.what()));
  }
  return absl::OkStatus();
}

std::string EventPayloadToJson(const std::string& message, const JobStatus& status) {
  json j = ProgressJson(status);
  j["message"] = message;
  j["state"] = api::JobStateName(status.state);
  j["reason"] = status.reason;
  j["gpus"] = status.gpus;
  j["attempts"] = status.attempts;
  j["started_unix"] = status.started_unix;
  j["finished_unix"] = status.finished_unix;
  return j.dump();
}

Status EventPayloadFromJson(const std::string& text, const JobStatus& base, JobEvent* event) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(
        absl::StrCat("event ", event->seq, " of job ", base.id, ": payload is not a JSON object"));
  }
  event->status = base;
  try {
    ProgressFrom(j, &event->status);
    event->message = j.value("message", std::string());
    if (!ParseJobState(j.value("state", std::string()), &event->status.state)) {
      return absl::DataLossError(
          absl::StrCat("event ", event->seq, " of job ", base.id, ": unknown state"));
    }
    event->status.reason = j.value("reason", std::string());
    event->status.gpus = j.value("gpus", std::vector<int>());
    event->status.attempts = j.value("attempts", 0);
    event->status.started_unix = j.value("started_unix", int64_t{0});
    event->status.finished_unix = j.value("finished_unix", int64_t{0});
  } catch (const json::exception& e) {
    return absl::DataLossError(
        absl::StrCat("event ", event->seq, " of job ", base.id, ": ", e.what()));
  }
  return absl::OkStatus();
}

bool ParseJobState(const std::string& name, JobState* state) {
  for (int i = 0; i < 6; ++i) {
    if (name == kStateNames[i]) {
      *state = static_cast<JobState>(i);
      return true;
    }
  }
  return false;
}

const char* EventTypeName(JobEvent::Type type) { return kEventNames[static_cast<int>(type)]; }

bool ParseEventType(const std::string& name, JobEvent::Type* type) {
  for (int i = 0; i < 6; ++i) {
    if (name == kEventNames[i]) {
      *type = static_cast<JobEvent::Type>(i);
      return true;
    }
  }
  return false;
}

}  // namespace vlmd::jobs

namespace vlmd::api {

const char* JobStateName(JobState state) {
  return vlmd::jobs::kStateNames[static_cast<int>(state)];
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

}  // namespace vlmd::api
