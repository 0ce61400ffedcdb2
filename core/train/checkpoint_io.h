// checkpoint-N/ directories of a training job: the PEFT adapter (adapter_model.safetensors +
// adapter_config.json), vlmd_adapter.json (pixel limits and template, applied when the adapter
// is served), trainer_state.json, optimizer.safetensors, scheduler.json, rng_state.safetensors
// and sft_args.json (the job spec). Internal to core/ (torch).
#pragma once

#include <string>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/train/job_spec.h"
#include "core/train/optimizer.h"
#include "core/train/trainer.h"

namespace vlmd {

inline constexpr int kCheckpointVersion = 1;

// Pointers into a Trainer's live state (not owned).
struct TrainingState {
  const JobSpec* spec;
  LoraAdapter* adapter;
  AdamW* optimizer;
  TrainProgress* progress;
  int64_t max_steps;
  PreprocessorConfig preprocessor;  // effective pixel limits are the spec's, else these
};

Status WriteTrainingCheckpoint(const std::string& dir, const TrainingState& state);
// Restores adapter weights (in place), optimizer, progress and RNG. Errors name the file;
// a version or shape mismatch fails loudly.
Status ReadTrainingCheckpoint(const std::string& dir, TrainingState* state);
// Deletes the oldest checkpoints beyond `limit` (0 = keep all); never the best or the newest.
void RotateCheckpoints(int limit, TrainProgress* progress);
// Peak memory of the device in GiB (CUDA allocator peak; resident set size on CPU).
double DeviceMemoryGiB(const at::Device& device);

}  // namespace vlmd
