#include "client/job_view.h"

#include <cmath>
#include <cstdarg>

#include "client/output.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;
constexpr const char* kPrefix = "JOB_STATE_";

std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof(buf), format, args);
  va_end(args);
  return buf;
}

std::string Bar(int64_t step, int64_t max_steps, int width) {
  int filled =
      max_steps > 0 ? static_cast<int>(width * std::min<int64_t>(step, max_steps) / max_steps) : 0;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string Gpus(const v1::JobStatus& job) {
  if (job.gpus().empty()) return job.spec().gpus() == 0 ? "cpu" : "-";
  std::string out;
  for (int g : job.gpus()) out += (out.empty() ? "" : ",") + std::to_string(g);
  return out;
}

}  // namespace

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(std::string(kPrefix).size());
  return name.empty() ? "UNKNOWN" : name;
}

bool ParseState(const std::string& text, v1::JobState* state) {
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind(kPrefix, 0) != 0) upper = kPrefix + upper;
  return v1::JobState_Parse(upper, state) && *state != v1::JOB_STATE_UNSPECIFIED;
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string FormatDuration(double seconds) {
  int64_t s = seconds > 0 && std::isfinite(seconds) ? static_cast<int64_t>(seconds + 0.5) : 0;
  if (s >= 3600) return Printf("%lldh %02lldm %02llds", s / 3600LL, s / 60 % 60LL, s % 60LL);
  if (s >= 60) return Printf("%lldm %02llds", s / 60LL, s % 60LL);
  return Printf("%llds", static_cast<long long>(s));
}

std::string ProgressLine(const v1::JobStatus& job, int width) {
  std::string line = job.id() + " " + StateName(job.state()) + " " +
                     Bar(job.step(), job.max_steps(), width) +
                     Printf(" %lld/%lld", static_cast<long long>(job.step()),
                            static_cast<long long>(job.max_steps()));
  if (job.max_steps() > 0) line += Printf(" %.0f%%", 100.0 * job.step() / job.max_steps());
  if (job.has_train_metrics()) {
    const v1::TrainMetrics& t = job.train_metrics();
    line += Printf(" loss %.4g acc %.3f lr %.2e", t.loss(), t.acc(), t.learning_rate());
  }
  if (job.has_eval_metrics()) {
    line +=
        Printf(" | eval loss %.4g acc %.3f", job.eval_metrics().loss(), job.eval_metrics().acc());
  }
  if (job.samples_per_second() > 0) line += Printf(" | %.2f samples/s", job.samples_per_second());
  if (job.state() == v1::JOB_STATE_RUNNING && job.step() > 0) {
    line += " ETA " + FormatDuration(job.remaining_seconds());
  }
  return line;
}

std::string StatusBlock(const v1::JobStatus& job) {
  std::string out = Printf("job:         %s (%s)\nstate:       %s\n", job.id().c_str(),
                           job.name().c_str(), StateName(job.state()).c_str());
  if (!job.reason().empty()) out += "reason:      " + job.reason() + "\n";
  out += "progress:    " + ProgressLine(job) + "\n";
  out += Printf("epoch:       %.2f   elapsed %s   remaining %s\n", job.epoch(),
                FormatDuration(job.elapsed_seconds()).c_str(),
                FormatDuration(job.remaining_seconds()).c_str());
  out +=
      Printf("data:        %lld train, %lld validation, %lld skipped (too long)\n",
             static_cast<long long>(job.train_samples()), static_cast<long long>(job.val_samples()),
             static_cast<long long>(job.skipped_samples()));
  out += Printf("resources:   %s, attempt %d\n", Gpus(job).c_str(), job.attempts());
  for (const v1::Checkpoint& c : job.checkpoints()) {
    out += Printf("checkpoint:  %s%s\n", c.path().c_str(), c.best() ? "  (best)" : "");
  }
  out += "directory:   " + job.job_dir() + "\n";
  return out;
}

std::string JobsHeader() {
  return Printf("%-20s %-24s %-10s %-11s %-10s %-10s %s", "ID", "NAME", "STATE", "STEP", "LOSS",
                "EVAL_LOSS", "GPUS");
}

std::string JobsRow(const v1::JobStatus& job) {
  std::string step = Printf("%lld/%lld", static_cast<long long>(job.step()),
                            static_cast<long long>(job.max_steps()));
  std::string loss = job.has_train_metrics() ? Printf("%.4g", job.train_metrics().loss()) : "-";
  std::string eval = job.has_eval_metrics() ? Printf("%.4g", job.eval_metrics().loss()) : "-";
  return Printf("%-20s %-24s %-10s %-11s %-10s %-10s %s", job.id().c_str(), job.name().c_str(),
                StateName(job.state()).c_str(), step.c_str(), loss.c_str(), eval.c_str(),
                Gpus(job).c_str());
}

}  // namespace vlmctl
