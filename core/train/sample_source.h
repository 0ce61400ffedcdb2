// Training examples built on demand (tokens, labels, pixels) from validated samples, for the
// trainer. Internal to core/ (torch).
#pragma once

#include <memory>
#include <vector>

#include "core/train/example.h"
#include "core/train/job_data.h"
#include "core/train/trainer.h"

namespace vlmd {

class SampleSource : public ExampleSource {
 public:
  SampleSource(std::vector<Sample> samples, std::shared_ptr<const ExampleOptions> options)
      : samples_(std::move(samples)), options_(std::move(options)) {}
  size_t size() const override { return samples_.size(); }
  StatusOr<TrainExample> Get(size_t index) const override;

 private:
  std::vector<Sample> samples_;
  std::shared_ptr<const ExampleOptions> options_;
};

// The training and validation sources of a job's validated data (`val` may be empty).
struct JobSources {
  std::unique_ptr<SampleSource> train, val;
};
JobSources MakeJobSources(JobData data);

}  // namespace vlmd
