#include "core/train/job_data.h"

#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

StatusOr<std::vector<DatasetSource>> ResolveAll(const std::vector<std::string>& names,
                                                const std::string& data_root) {
  std::vector<DatasetSource> sources;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(DatasetSource source, ResolveDatasetName(name, data_root));
    sources.push_back(std::move(source));
  }
  return sources;
}

// Reads and validates `names`; returns the trainable samples and fills *report.
StatusOr<std::vector<Sample>> LoadPart(const std::vector<std::string>& names, const JobSpec& spec,
                                       const ExampleOptions& example_options,
                                       const JobDataOptions& options, ValidationReport* report) {
  ASSIGN_OR_RETURN(std::vector<DatasetSource> sources, ResolveAll(names, options.data_root));
  DatasetReadOptions read;
  read.allowed_roots = options.allowed_roots;
  read.max_issues = options.max_issues;
  ValidationOptions validation;
  validation.max_length = spec.max_length;
  validation.max_issues = options.max_issues;
  validation.stop = options.stop;
  ASSIGN_OR_RETURN(ValidatedDataset data,
                   ValidateDataset(sources, read, example_options, validation));
  *report = std::move(data.report);
  return KeepTrainable(std::move(data.samples), *report);
}

}  // namespace

bool JobData::ok() const { return train_report.ok() && (!val_report || val_report->ok()); }

std::string JobData::Summary() const {
  std::string out = absl::StrCat("Training data: ", train_report.Summary());
  if (val_report) absl::StrAppend(&out, " Validation data: ", val_report->Summary());
  return out;
}

StatusOr<JobData> LoadJobData(const JobSpec& spec, const ModelConfig& model,
                              const PreprocessorConfig& preprocessor,
                              std::shared_ptr<const Tokenizer> tokenizer,
                              const JobDataOptions& options) {
  ASSIGN_OR_RETURN(ExampleOptions examples,
                   MakeExampleOptions(model, preprocessor, std::move(tokenizer), spec.min_pixels,
                                      spec.max_pixels));
  return LoadJobData(spec, std::move(examples), options);
}

StatusOr<JobData> LoadJobData(const JobSpec& spec, ExampleOptions examples,
                              const JobDataOptions& options) {
  JobData data;
  data.example_options = std::move(examples);
  data.example_options.images.allowed_roots = options.allowed_roots;
  data.example_options.images.decode = options.decode;
  ASSIGN_OR_RETURN(std::vector<Sample> train, LoadPart(spec.datasets, spec, data.example_options,
                                                       options, &data.train_report));
  std::vector<Sample> val;
  if (!spec.val_datasets.empty()) {
    data.val_report.emplace();
    ASSIGN_OR_RETURN(
        val, LoadPart(spec.val_datasets, spec, data.example_options, options, &*data.val_report));
  }
  if (!data.ok()) return data;
  if (!spec.val_datasets.empty()) {
    data.train = std::move(train);
    data.val = std::move(val);
    return data;
  }
  ASSIGN_OR_RETURN(TrainValSplit split, SplitTrainVal(std::move(train), spec.split_ratio,
                                                      static_cast<uint64_t>(spec.seed)));
  data.train = std::move(split.train);
  data.val = std::move(split.val);
  return data;
}

}  // namespace vlmd
