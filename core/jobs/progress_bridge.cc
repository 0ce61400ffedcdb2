// The one place that maps the worker's progress protocol (core/train/progress.h:
// ParseProgressLine) to WorkerReport.
#include "absl/strings/str_cat.h"
#include "core/jobs/worker_report.h"
#include "core/train/progress.h"

namespace vlmd::jobs {
namespace {

void FromTrain(const TrainLog& t, WorkerReport* r) {
  r->kind = WorkerReport::Kind::kTrain;
  r->step = t.step;
  r->max_steps = t.max_steps;
  r->epoch = t.epoch;
  r->metrics = {{"loss", t.loss},           {"acc", t.acc},
                {"grad_norm", t.grad_norm}, {"learning_rate", t.learning_rate},
                {"memory_gib", t.memory_gib}, {"train_speed", t.train_speed}};
  r->samples_per_second = t.samples_per_second;
  r->elapsed_s = t.elapsed_s;
  r->remaining_s = t.remaining_s;
}

void FromEval(const EvalLog& e, WorkerReport* r) {
  r->kind = WorkerReport::Kind::kEval;
  r->step = e.step;
  r->max_steps = e.max_steps;
  r->epoch = e.epoch;
  r->metrics = {{"eval_loss", e.eval_loss}, {"eval_acc", e.eval_acc}};
  for (const auto& [name, value] : e.extra) r->metrics["eval_" + name] = value;
}

WorkerReport FromEvent(const ProgressEvent& e) {
  WorkerReport r;
  switch (e.type) {
    case ProgressEvent::Type::kTrain: FromTrain(e.train, &r); break;
    case ProgressEvent::Type::kEval: FromEval(e.eval, &r); break;
    case ProgressEvent::Type::kCheckpoint:
      r.kind = WorkerReport::Kind::kCheckpoint;
      r.step = e.checkpoint.step;
      r.path = e.checkpoint.path;
      r.best = e.checkpoint.best;
      r.metrics = e.checkpoint.metrics;
      break;
    case ProgressEvent::Type::kState:
      r.kind = WorkerReport::Kind::kState;
      r.state = e.state;
      r.message = e.message;
      break;
    case ProgressEvent::Type::kLog:
      r.kind = WorkerReport::Kind::kLog;
      r.message = e.message;
      break;
    case ProgressEvent::Type::kFinish:
      r.kind = WorkerReport::Kind::kLog;
      r.message = absl::StrCat("training finished; best checkpoint ",
                               e.summary.best_model_checkpoint.empty()
                                   ? std::string("(no evaluation)")
                                   : e.summary.best_model_checkpoint,
                               ", last ", e.summary.last_model_checkpoint);
      break;
  }
  return r;
}

}  // namespace

WorkerReport ParseWorkerLine(const std::string& line) {
  StatusOr<ProgressEvent> event = ParseProgressLine(line);
  if (event.ok()) return FromEvent(*event);
  WorkerReport raw;
  raw.kind = WorkerReport::Kind::kLog;
  raw.message = line;
  raw.raw = true;
  return raw;
}

}  // namespace vlmd::jobs
