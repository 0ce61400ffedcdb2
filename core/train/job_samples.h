// The samples a training job trains and validates on, read exactly as the worker reads them:
// data set names resolved under the data root, every row and image checked, over-long samples
// left out, then SWIFT's split (spec.split_ratio, spec.seed) unless val_datasets are given.
// The evaluation service rebuilds a job's validation split with the same function. No torch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/dataset.h"
#include "core/train/example.h"
#include "core/train/job_spec.h"

namespace vlmd {

struct JobSamples {
  std::vector<Sample> train;
  std::vector<Sample> val;
};

// Reads spec.datasets (and spec.val_datasets) with `examples` (tokenizer, pixel limits) and
// splits them. Each validation report goes to `log` (may be empty). INVALID_ARGUMENT with the
// report when validation fails; file-level errors as ReadDatasets returns them.
StatusOr<JobSamples> LoadJobSamples(const JobSpec& spec, const ExampleOptions& examples,
                                    const std::string& data_root,
                                    const std::function<void(const std::string&)>& log);

// The data root of named data sets (latex-ocr-print, ...): $VLMD_DATA_ROOT, or "".
std::string DataRootFromEnvironment();

}  // namespace vlmd
