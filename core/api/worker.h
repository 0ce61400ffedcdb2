// The training worker process (`vlmd train --job DIR`), which the job service starts with
// CUDA_VISIBLE_DEVICES set to the job's GPUs. Torch-free facade.
#pragma once

#include <string>

namespace vlmd::api {

// Exit codes the job service interprets.
inline constexpr int kWorkerOk = 0;
inline constexpr int kWorkerFailed = 1;
inline constexpr int kWorkerCancelled = 3;   // SIGTERM/SIGINT: stopped after a step
inline constexpr int kWorkerOutOfMemory = 4;

// Runs the job in `job_dir` (reads job.json; writes checkpoint-N/, logging.jsonl, runs/,
// images/, progress.jsonl; prints progress lines on stdout). Returns an exit code above.
int RunTrainWorker(const std::string& job_dir, const std::string& tokenizer_fallback);

}  // namespace vlmd::api
