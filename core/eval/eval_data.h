// The samples an evaluation runs on, and where its results go. No torch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/api/eval.h"
#include "core/train/dataset.h"
#include "core/train/example.h"
#include "core/train/job_spec.h"

namespace vlmd::eval {

// Reads `names` (data files, or latex-ocr-print / latex-ocr-handwrite under `data_root`) in the
// fine-tuning formats. Files and images must resolve under `roots` (plus `data_root` for named
// sets): PERMISSION_DENIED otherwise. A malformed row or unusable image fails the read with
// INVALID_ARGUMENT naming the first issues (file:line); NOT_FOUND for a missing file.
StatusOr<std::vector<Sample>> ReadEvalDatasets(const std::vector<std::string>& names,
                                               const std::vector<std::string>& roots,
                                               const std::string& data_root);

// The validation split of a job, rebuilt as its worker built it (LoadJobSamples with the
// job's spec and example options made from the same model and pixel limits).
StatusOr<std::vector<Sample>> JobValidationSamples(const JobSpec& spec,
                                                   const ExampleOptions& examples,
                                                   const std::string& data_root);

// The first `max_samples` (all when <= 0).
void Truncate(int64_t max_samples, std::vector<Sample>* samples);

// The output directory: `requested` resolved under `roots` (PERMISSION_DENIED outside), else
// <job_dir>/evals/<id> for a job, else <state_dir>/evals/<id>. Creates it (mode 0750).
StatusOr<std::string> MakeOutputDir(const std::string& requested,
                                    const std::vector<std::string>& roots,
                                    const std::string& job_dir, const std::string& state_dir,
                                    const std::string& id);

}  // namespace vlmd::eval
