// The one place that maps the worker's progress protocol (core/train/progress.h: ProgressSink
// writes one JSON object per stdout line, ParseProgressLine reads it back) to WorkerReport.
#include "absl/strings/str_cat.h"
#include "core/jobs/worker_report.h"
#include "core/train/progress.h"

namespace vlmd::jobs {
namespace {

WorkerReport FromTrain(const TrainLog& t) {
  WorkerReport r;
  r.kind = WorkerReport::Kind::kTrain;
  r.step = t.step;
  r.max_steps = t.max_steps;
  r.epoch = t.epoch;
  r.metrics = {{"loss", t.loss},
               {"acc", t.acc},
               {"grad_norm", t.grad_norm},
               {"learning_rate", t.learning_rate},
               {"memory_gib", t.memory_gib},
               {"train_speed", t.train_speed}};
  r.samples_per_second = t.samples_per_second;
  r.elapsed_s = t.elapsed_s;
  r.remaining_s = t.remaining_s;
  return r;
}

WorkerReport FromEval(const EvalLog& e) {
  WorkerReport r;
  r.kind = WorkerReport::Kind::kEval;
  r.step = e.step;
  r.max_steps = e.max_steps;
  r.epoch = e.epoch;
  r.metrics = {{"eval_loss", e.eval_loss},
               {"eval_acc", e.eval_acc},
               {"eval_runtime", e.eval_runtime},
               {"eval_samples_per_second", e.eval_samples_per_second},
               {"eval_steps_per_second", e.eval_steps_per_second}};
  for (const auto& [name, value] : e.extra) r.metrics["eval_" + name] = value;
  return r;
}

WorkerReport FromCheckpoint(const CheckpointEvent& c) {
  WorkerReport r;
  r.kind = WorkerReport::Kind::kCheckpoint;
  r.step = c.step;
  r.path = c.path;
  r.best = c.best;
  r.metrics = c.metrics;
  return r;
}

std::string FinishMessage(const TrainSummary& s) {
  return absl::StrCat("training finished in ", static_cast<int64_t>(s.train_time),
                      " s; best checkpoint ",
                      s.best_model_checkpoint.empty() ? "(none)" : s.best_model_checkpoint,
                      " (metric ", s.best_metric, "), last ", s.last_model_checkpoint);
}

WorkerReport FromEvent(const ProgressEvent& event) {
  switch (event.type) {
    case ProgressEvent::Type::kTrain:
      return FromTrain(event.train);
    case ProgressEvent::Type::kEval:
      return FromEval(event.eval);
    case ProgressEvent::Type::kCheckpoint:
      return FromCheckpoint(event.checkpoint);
    case ProgressEvent::Type::kState: {
      WorkerReport r;
      r.kind = WorkerReport::Kind::kState;
      r.state = event.state;
      r.message = event.message;
      return r;
    }
    case ProgressEvent::Type::kLog:
      break;
    case ProgressEvent::Type::kFinish: {
      WorkerReport r;
      r.message = FinishMessage(event.summary);
      return r;
    }
  }
  WorkerReport r;
  r.message = event.message;
  return r;
}

}  // namespace

WorkerReport ParseWorkerLine(const std::string& line) {
  StatusOr<ProgressEvent> event = ParseProgressLine(line);
  if (!event.ok()) {
    WorkerReport raw;
    raw.kind = WorkerReport::Kind::kLog;
    raw.message = line;
    raw.raw = true;
    return raw;
  }
  return FromEvent(*event);
}

}  // namespace vlmd::jobs
