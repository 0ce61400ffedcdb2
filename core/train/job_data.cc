#include "core/train/job_data.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/train/validate.h"

namespace vlmd {

StatusOr<TrainExample> SampleSource::Get(size_t index) const {
  ASSIGN_OR_RETURN(TokenizedExample ex, BuildExample(samples_[index], *options_));
  TrainExample out;
  out.ids = std::move(ex.ids);
  out.labels = std::move(ex.labels);
  out.images = ToImageBatch(ex.images);
  return out;
}

namespace {

// Reads and validates data sets; the report goes to the job log.
StatusOr<std::vector<Sample>> LoadSamples(const std::vector<std::string>& names,
                                          const ExampleOptions& examples, const JobSpec& spec,
                                          TrainingSink* sink) {
  const char* root = std::getenv("VLMD_DATA_ROOT");
  std::vector<DatasetSource> sources;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(DatasetSource s, ResolveDatasetName(name, root ? root : ""));
    sources.push_back(std::move(s));
  }
  ValidationOptions options;
  options.max_length = spec.max_length;
  ASSIGN_OR_RETURN(ValidatedDataset v,
                   ValidateDataset(sources, DatasetReadOptions(), examples, options));
  sink->OnLogLine(v.report.Summary());
  if (!v.report.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data set validation failed: ",
                                                   v.report.Summary()));
  }
  return KeepTrainable(std::move(v.samples), v.report);
}

}  // namespace

StatusOr<JobData> LoadJobData(const JobSpec& spec, const ModelBundle& bundle, TrainingSink* sink) {
  if (bundle.tokenizer == nullptr) {
    return absl::FailedPreconditionError("the model has no tokenizer.json; training needs one");
  }
  ASSIGN_OR_RETURN(ExampleOptions options,
                   MakeExampleOptions(bundle.model->config(), bundle.preprocessor,
                                      bundle.tokenizer, spec.min_pixels, spec.max_pixels));
  auto shared = std::make_shared<const ExampleOptions>(std::move(options));
  ASSIGN_OR_RETURN(std::vector<Sample> train, LoadSamples(spec.datasets, *shared, spec, sink));
  std::vector<Sample> val;
  if (!spec.val_datasets.empty()) {
    ASSIGN_OR_RETURN(val, LoadSamples(spec.val_datasets, *shared, spec, sink));
  } else if (spec.split_ratio > 0) {
    ASSIGN_OR_RETURN(TrainValSplit split,
                     SplitTrainVal(std::move(train), spec.split_ratio, spec.seed));
    train = std::move(split.train);
    val = std::move(split.val);
  }
  JobData data;
  data.train = std::make_unique<SampleSource>(std::move(train), shared);
  data.val = std::make_unique<SampleSource>(std::move(val), shared);
  return data;
}

}  // namespace vlmd
