#include "core/train/sample_source.h"

#include "core/engine/step.h"

namespace vlmd {

StatusOr<TrainExample> SampleSource::Get(size_t index) const {
  ASSIGN_OR_RETURN(TokenizedExample ex, BuildExample(samples_[index], *options_));
  TrainExample out;
  out.ids = std::move(ex.ids);
  out.labels = std::move(ex.labels);
  out.images = ToImageBatch(ex.images);
  return out;
}

JobSources MakeJobSources(JobData data) {
  auto options = std::make_shared<const ExampleOptions>(std::move(data.example_options));
  JobSources s;
  s.train = std::make_unique<SampleSource>(std::move(data.train), options);
  s.val = std::make_unique<SampleSource>(std::move(data.val), options);
  return s;
}

}  // namespace vlmd
