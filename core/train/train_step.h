// Forward and backward of one micro-batch for LoRA fine-tuning: packed sequences (no padding),
// loss = cross-entropy summed over label tokens (the caller scales it by the token count of the
// whole accumulated batch, as transformers' Trainer does), token accuracy as SWIFT's acc, and
// optional gradient checkpointing per decoder layer. Internal to core/ (torch).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "core/engine/step.h"
#include "core/model/qwen2vl.h"

namespace vlmd {

// One tokenized training sample.
struct TrainExample {
  std::vector<int32_t> ids;     // image placeholders expanded
  std::vector<int32_t> labels;  // same length; -100 where no loss is taken
  ImageBatch images;
  // Tokens whose next token is a label (the positions the loss covers).
  int64_t LabelTokens() const;
};

struct MicroBatchResult {
  double loss_sum = 0;      // summed cross-entropy over label tokens
  int64_t tokens = 0;       // label tokens
  int64_t correct = 0;      // argmax == label
};

struct StepOptions {
  double lora_dropout = 0.0;
  bool training = true;                  // false: no dropout, no backward
  bool gradient_checkpointing = false;
  bool vision_trainable = false;         // the adapter wraps vision-tower modules
  double loss_scale = 1.0;               // multiplies loss_sum before backward
};

// Runs the micro-batch; with options.training, accumulates gradients into the adapter's
// tensors (those with requires_grad).
MicroBatchResult ForwardBackward(const Qwen2VL& model, const LoraAdapter& adapter,
                                 const std::vector<const TrainExample*>& batch,
                                 const StepOptions& options);

}  // namespace vlmd
