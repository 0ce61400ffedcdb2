// Wire messages of vlmd.v1.Jobs <-> the plain structs of core/api/jobs.h and core/api/eval.h.
// Pure functions; thread-safe.
#pragma once

#include "core/api/eval.h"
#include "core/api/jobs.h"
#include "core/base/status.h"
#include "vlmd/v1/jobs.pb.h"

namespace vlmd::server {

// The job spec a request asks for: every optional field left unset (and every empty string
// or list) keeps JobSpec's SWIFT default. Range checks are JobSpec::Validate's, in the job
// service.
JobSpec FromProto(const v1::JobSpec& in);
// The effective spec, every field set.
void ToProto(const JobSpec& in, v1::JobSpec* out);

// JOB_STATE_UNSPECIFIED -> nullopt (any state).
std::optional<api::JobState> FromProto(v1::JobState state);
v1::JobState ToProto(api::JobState state);
v1::JobEventType ToProto(api::JobEvent::Type type);

// The status with its spec unless `with_spec` is false (the snapshots of WatchJob events).
void ToProto(const api::JobStatus& in, v1::JobStatus* out, bool with_spec = true);
void ToProto(const api::JobEvent& in, v1::JobEvent* out);

// INVALID_ARGUMENT when the request names no adapter or job.
StatusOr<api::MergeRequest> FromProto(const v1::MergeLoraRequest& in);
void ToProto(const api::MergeResult& in, v1::MergeLoraResponse* out);

api::EvalRequest FromProto(const v1::EvaluateRequest& in);
void ToProto(const api::EvalSampleResult& in, v1::EvalSample* out);
void ToProto(const api::EvalSummary& in, v1::EvalSummary* out);

}  // namespace vlmd::server
