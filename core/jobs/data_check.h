// The VALIDATING step of a job, run in the background before any GPU is taken: the base
// model's config.json, preprocessor_config.json and tokenizer are loaded (so a broken model
// directory fails here, not in the worker), then every data line and image header is checked
// by the data-set validator of core/train.
#pragma once

#include <atomic>

#include "core/api/jobs.h"
#include "core/jobs/job_manager.h"

namespace vlmd::jobs {

// Checks a resolved spec (paths already canonical and under the allowed roots). Errors are
// the FAILED reason: "file:line: reason (and N more bad lines)" for data, or the model file
// that could not be read. `stop` turns true at shutdown (the check then ends early).
// Thread-safe.
StatusOr<DataCheckResult> CheckJobData(const JobSpec& spec, const api::JobServiceConfig& config,
                                       const std::atomic<bool>& stop);

}  // namespace vlmd::jobs
