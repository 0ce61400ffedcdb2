// A fine-tuning job's specification: SWIFT 2.x names and defaults (spec/swift.md §1), stored
// as job.json in the job directory (versioned). No torch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// Version 2 added the generation-eval fields; version 1 specs read with them off.
inline constexpr int kJobSpecVersion = 2;
inline constexpr int kOldestJobSpecVersion = 1;

struct JobSpec {
  int version = kJobSpecVersion;
  std::string name;         // job name (also the adapter name it is served under)
  std::string model;        // base checkpoint directory
  std::string output_dir;   // job directory (set by the server)

  // Data.
  std::vector<std::string> datasets;      // files, or latex-ocr-print / latex-ocr-handwrite
  std::vector<std::string> val_datasets;  // when set, split_ratio is ignored
  double split_ratio = 0.01;              // dataset_test_ratio
  int64_t seed = 42;
  bool shuffle = true;                    // reshuffle the training order every epoch
  int64_t max_length = 2048;              // tokens, image tokens included
  std::optional<int64_t> min_pixels, max_pixels;  // default: the model's preprocessor config

  // LoRA.
  int lora_rank = 8;
  double lora_alpha = 32;
  double lora_dropout = 0.05;
  // "DEFAULT" (every linear layer of the LLM), "ALL" (also the vision tower and merger), or
  // module names as PEFT matches them (q_proj, qkv, mlp.0, ...).
  std::vector<std::string> target_modules = {"DEFAULT"};
  bool use_rslora = false;
  std::string init_adapter;  // start from these adapter weights instead of PEFT's init

  // Optimisation.
  double learning_rate = 1e-4;
  std::string lr_scheduler_type = "cosine";  // cosine, linear, constant
  double warmup_ratio = 0.05;
  double weight_decay = 0.1;
  double adam_beta1 = 0.9, adam_beta2 = 0.95, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // 0 = no clipping
  int batch_size = 1;
  int gradient_accumulation_steps = 0;  // 0 = ceil(16 / batch_size / gpus)
  int eval_batch_size = 1;
  double num_train_epochs = 1;
  int64_t max_steps = -1;  // > 0 overrides epochs
  bool gradient_checkpointing = true;
  std::string dtype = "auto";  // auto = bfloat16 on CUDA, float32 on CPU

  // Evaluation, saving, logging.
  int64_t eval_steps = 50;
  int64_t save_steps = 50;
  int64_t logging_steps = 5;
  int save_total_limit = 2;  // the best checkpoint is never deleted; 0 = keep all
  // The eval metric that picks the best checkpoint: loss or acc, or with generation eval at
  // every eval step exact_match, edit_distance, edit_distance_token or bleu. An "eval_" prefix
  // is accepted (HF's spelling).
  std::string metric_for_best_model = "loss";
  // Unset: false for a metric whose name ends in "loss", true otherwise (as transformers).
  std::optional<bool> greater_is_better;

  // Generation metrics on the validation split (version 2; off by default). With
  // predict_with_generate, the worker decodes the validation samples greedily with the adapter
  // being trained and reports eval_exact_match, eval_edit_distance (characters),
  // eval_edit_distance_token and eval_bleu (corpus BLEU-4 on space-separated tokens) next to
  // eval_loss/eval_acc, and writes each sample's prediction to eval_results/step-N.jsonl.
  bool predict_with_generate = false;
  std::string generation_eval = "every_eval";  // every_eval: at each eval step; end: last only
  int generation_max_new_tokens = 512;         // per sample; longer answers are cut
  int64_t generation_max_samples = 0;          // the first N validation samples; 0 = all
  int generation_batch_size = 8;               // sequences decoded together

  // Scheduling.
  int gpus = 1;      // GPUs wanted (0 = CPU); a job with N > 1 trains data-parallel on N ranks
  int processes = 0;  // data-parallel ranks of a CPU job (gpus 0); 0 = 1. With gpus > 0: 0 or gpus
  int priority = 0;  // higher runs first
  std::string resume_from_checkpoint;  // a checkpoint-N directory

  // Reads job.json text; errors name the file and the field. Unknown fields are an error.
  static StatusOr<JobSpec> FromJson(const std::string& text, const std::string& source);
  std::string ToJson() const;
  // Range checks; INVALID_ARGUMENT naming the field.
  Status Validate() const;
  // gradient_accumulation_steps with the SWIFT default applied.
  int EffectiveAccumulation(int world_size) const;
  // Data-parallel ranks the job runs on: gpus, or processes for a CPU job (at least 1).
  int WorldSize() const;
  // metric_for_best_model without an "eval_" prefix (the key in the trainer's metrics).
  std::string BestMetricName() const;
  // greater_is_better, or its default for metric_for_best_model.
  bool GreaterIsBetter() const;
  // True when generation metrics run at an evaluation (`final`: the one at the last step).
  bool GenerationAt(bool final) const;
};

}  // namespace vlmd
