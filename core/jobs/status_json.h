// JSON forms of the parts of a job's status that change while it runs (the "progress
// snapshot" column of the job store and the payload of each event). The spec is stored
// separately (job.json / the spec column), so snapshots stay small. No torch.
#pragma once

#include <string>

#include "core/api/jobs.h"
#include "core/base/status.h"

namespace vlmd::jobs {

// Everything of `status` except id, name, state, reason, spec, gpus, attempts and the
// timestamps (those have their own columns). Thread-compatible (pure functions).
std::string ProgressToJson(const api::JobStatus& status);
// Fills the progress fields of `status` from ProgressToJson's text. `source` names the row in
// errors.
Status ProgressFromJson(const std::string& text, const std::string& source, api::JobStatus* status);

// An event payload: the message plus a full snapshot of the status without the spec.
std::string EventPayloadToJson(const std::string& message, const api::JobStatus& status);
// Reads an event payload into `event` (message and status); the spec, id and name are taken
// from `base` (the job's current status), since payloads do not repeat them.
Status EventPayloadFromJson(const std::string& text, const api::JobStatus& base,
                            api::JobEvent* event);

// "VALIDATING" -> kValidating, ...; nullopt-like false return for unknown names.
bool ParseJobState(const std::string& name, api::JobState* state);
const char* EventTypeName(api::JobEvent::Type type);
bool ParseEventType(const std::string& name, api::JobEvent::Type* type);

}  // namespace vlmd::jobs
