// A job's data, ready for the trainer: data sets resolved, read and validated (the report goes
// to the sink's log), the validation split made as SWIFT does, and example sources that build
// tokens and pixels on demand. Internal to core/ (torch).
#pragma once

#include <memory>
#include <vector>

#include "core/engine/model_bundle.h"
#include "core/train/example.h"
#include "core/train/job_spec.h"
#include "core/train/sink.h"
#include "core/train/trainer.h"

namespace vlmd {

// Builds training examples on demand from validated samples.
class SampleSource : public ExampleSource {
 public:
  SampleSource(std::vector<Sample> samples, std::shared_ptr<const ExampleOptions> options)
      : samples_(std::move(samples)), options_(std::move(options)) {}
  size_t size() const override { return samples_.size(); }
  StatusOr<TrainExample> Get(size_t index) const override;
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
  std::shared_ptr<const ExampleOptions> options_;
};

struct JobData {
  std::unique_ptr<SampleSource> train, val;  // val may be empty (size 0)
};

// Data sets named by `spec` (files, or latex-ocr-* names under $VLMD_DATA_ROOT).
StatusOr<JobData> LoadJobData(const JobSpec& spec, const ModelBundle& bundle, TrainingSink* sink);

}  // namespace vlmd
