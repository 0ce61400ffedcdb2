// vlmctl's job watch loop (job_view.h: WatchJob).
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <thread>

#include "client/job_view.h"
#include "client/output.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;
using Clock = std::chrono::steady_clock;

std::string TimeOfDay(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

// Prints a job's events: lines for state changes, checkpoints and logs, and a progress line
// that is redrawn in place on a terminal (one line per update otherwise).
class WatchPrinter {
 public:
  WatchPrinter(std::FILE* out, bool json) : out_(out), json_(json), tty_(isatty(fileno(out))) {}

  void OnEvent(const v1::JobEvent& e) {
    if (json_) {
      std::fprintf(out_, "%s\n", ToJson(e).c_str());
    } else if (e.type() == v1::JOB_EVENT_TYPE_TRAIN_METRICS) {
      Progress(ProgressLine(e.status()));
    } else {
      Line("[" + TimeOfDay(e.time_unix_ms()) + "] " + e.message());
      if (e.type() == v1::JOB_EVENT_TYPE_EVAL_METRICS) Progress(ProgressLine(e.status()));
    }
    std::fflush(out_);
  }

  // Ends an in-place progress line.
  void Finish() {
    if (tty_ && !progress_.empty()) std::fputs("\n", out_);
    progress_.clear();
    std::fflush(out_);
  }

 private:
  void Line(const std::string& text) {
    if (tty_) std::fputs("\r\033[K", out_);
    std::fprintf(out_, "%s\n", text.c_str());
    if (tty_ && !progress_.empty()) std::fputs(progress_.c_str(), out_);
  }
  void Progress(const std::string& text) {
    progress_ = text;
    if (tty_) {
      std::fprintf(out_, "\r\033[K%s", text.c_str());
    } else {
      std::fprintf(out_, "%s\n", text.c_str());
    }
  }

  std::FILE* out_;
  bool json_, tty_;
  std::string progress_;  // the progress line on screen (tty)
};

// The exit code for a finished job, with its reason on stderr when it did not succeed.
int FinalState(const ClientOptions& options, v1::Jobs::Stub& stub, const std::string& job_id) {
  grpc::ClientContext context;
  PrepareContext(options, &context);
  v1::GetJobStatusRequest request;
  request.set_job_id(job_id);
  v1::GetJobStatusResponse response;
  grpc::Status status = stub.GetJobStatus(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  const v1::JobStatus& job = response.job();
  if (job.state() == v1::JOB_STATE_SUCCEEDED) return kExitOk;
  std::fprintf(stderr, "vlmctl: job %s %s: %s\n", job_id.c_str(), StateName(job.state()).c_str(),
               job.reason().c_str());
  return kExitError;
}

}  // namespace

int WatchJob(const ClientOptions& options, const std::string& job_id, bool json, double retry_s,
             std::FILE* out) {
  std::shared_ptr<grpc::Channel> channel = Connect(options);
  if (channel == nullptr) return kExitUsage;
  auto stub = v1::Jobs::NewStub(channel);
  WatchPrinter printer(out, json);
  int64_t last_seq = 0;
  std::optional<Clock::time_point> give_up_at;  // set while the server is unreachable
  while (true) {
    grpc::ClientContext context;
    PrepareStreamContext(options, &context);
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_from_seq(last_seq);
    auto reader = stub->WatchJob(&context, request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      last_seq = event.seq();
      give_up_at.reset();
      printer.OnEvent(event);
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) break;
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      if (!give_up_at) {
        give_up_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(retry_s * 1e3));
      }
      if (Clock::now() < *give_up_at) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;  // the server restarts: resume after the last event seen
      }
    }
    printer.Finish();
    return ReportError(status);
  }
  printer.Finish();
  return FinalState(options, *stub, job_id);
}

}  // namespace vlmctl
