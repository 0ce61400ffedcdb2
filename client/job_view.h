// How vlmctl shows jobs: state names, one-line progress (bar, step/max, loss, eval, ETA),
// the status block of `vlmctl status`, the table of `vlmctl jobs`, and the watch loop shared
// by `vlmctl sft --watch` and `vlmctl status --watch`.
#pragma once

#include <cstdio>
#include <string>

#include "client/connection.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmctl {

// "RUNNING" for JOB_STATE_RUNNING.
std::string StateName(vlmd::v1::JobState state);
// Parses "running", "RUNNING" or "JOB_STATE_RUNNING"; false when unknown.
bool ParseState(const std::string& text, vlmd::v1::JobState* state);
bool IsTerminal(vlmd::v1::JobState state);

// "1h 02m 03s" / "4m 05s" / "6s".
std::string FormatDuration(double seconds);
// One line: "<id> RUNNING [#####.....] 12/20 60% loss 10.80 acc 0.50 lr 3.8e-03 | eval loss
// 10.82 acc 0.43 | 1.4 samples/s ETA 6s" (bar `width` characters; parts shown when known).
std::string ProgressLine(const vlmd::v1::JobStatus& job, int width = 24);
// The multi-line status block of `vlmctl status` (without the spec).
std::string StatusBlock(const vlmd::v1::JobStatus& job);
// The header and one row of `vlmctl jobs`.
std::string JobsHeader();
std::string JobsRow(const vlmd::v1::JobStatus& job);

// Follows a job with WatchJob from its first event: prints a progress line per update (redrawn
// in place when `out` is a terminal, one line per update otherwise) and each state change,
// checkpoint and log line on a line of its own; with `json`, every event as one JSON line.
// Reconnects from the last seen event when the server is unavailable (a restart), for up to
// `retry_s` seconds. Returns the exit code: 0 when the job SUCCEEDED, 1 when it FAILED or was
// CANCELLED (the reason on stderr), the call's error code otherwise.
int WatchJob(const ClientOptions& options, const std::string& job_id, bool json, double retry_s,
             std::FILE* out);

}  // namespace vlmctl
