// JobSpec::FromJson on arbitrary text (a job.json a user submits or a job directory holds).
// Properties: errors are INVALID_ARGUMENT naming the source; an accepted spec survives
// ToJson -> FromJson unchanged, and Validate() returns a status instead of crashing.
#include <cstdint>

#include "core/train/job_spec.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  std::string text(fuzz::AsView(data, size));
  StatusOr<JobSpec> spec = JobSpec::FromJson(text, "job.json");
  if (!spec.ok()) {
    FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument ||
               spec.status().code() == absl::StatusCode::kFailedPrecondition);  // version
    FUZZ_CHECK(spec.status().message().find("job.json") != std::string_view::npos);
    return 0;
  }
  Status valid = spec->Validate();
  FUZZ_CHECK(valid.ok() || valid.code() == absl::StatusCode::kInvalidArgument);
  if (valid.ok()) {
    FUZZ_CHECK(spec->EffectiveAccumulation(1) >= 1);
    FUZZ_CHECK(spec->EffectiveAccumulation(64) >= 1);
  }
  std::string once = spec->ToJson();
  StatusOr<JobSpec> again = JobSpec::FromJson(once, "again");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == once);
  return 0;
}
