// Evaluation of a served model (or model + adapter, or a job's checkpoint) on a data set in the
// fine-tuning formats (or a job's own validation split): generation metrics (exact match,
// normalized edit distance on characters and on space-separated LaTeX tokens, BLEU-4) and the
// teacher-forced eval_loss / eval_acc of training. Torch-free facade; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/engine/sampling.h"

namespace vlmd::api {

class InferenceService;
class JobService;

struct EvalRequest {
  std::string model;               // a served model name (empty = the first)
  std::string adapter;             // a loaded adapter name (optional)
  std::string job_id;              // instead of adapter: a job's checkpoint...
  std::string checkpoint = "best"; // ...best, last or a step number (loaded temporarily)
  std::vector<std::string> datasets;  // data files / names; empty + job_id = the job's val split
  int64_t max_samples = 0;         // 0 = all
  SamplingRequest sampling;        // greedy unless set
  int concurrency = 8;             // requests in flight (batched by the engine)
  bool teacher_forced = true;      // also compute eval_loss / eval_acc
  std::string output_dir;          // where results.jsonl goes (default: next to the job, or the
                                   // state dir's evals/<id>/); must be under allowed roots
};

// One sample's outcome (one line of results.jsonl).
struct EvalSampleResult {
  std::string source;      // file:line
  std::string query;
  std::string reference;
  std::string prediction;
  bool exact_match = false;
  double edit_distance_char = 0;   // 1 - Levenshtein / max length (1 = identical)
  double edit_distance_token = 0;  // the same on space-separated tokens
  double bleu = 0;                 // sentence BLEU-4 on tokens
};

struct EvalSummary {
  int64_t samples = 0;
  double exact_match = 0;
  double edit_distance_char = 0;
  double edit_distance_token = 0;
  double bleu = 0;                 // corpus BLEU-4 on tokens
  std::optional<double> eval_loss, eval_acc;
  double seconds = 0;
  double samples_per_second = 0;
  std::string results_path;        // results.jsonl
};

// Progress callback: (done, total, last finished sample). Return false to cancel.
using EvalProgress = std::function<bool(int64_t, int64_t, const EvalSampleResult*)>;

class EvalService {
 public:
  // Neither service is owned; `jobs` may be null (then job_id is refused).
  static std::unique_ptr<EvalService> Create(InferenceService* inference, JobService* jobs,
                                             std::vector<std::string> allowed_roots,
                                             std::string state_dir);
  virtual ~EvalService() = default;
  virtual StatusOr<EvalSummary> Evaluate(const EvalRequest& request,
                                         const EvalProgress& progress) = 0;
};

}  // namespace vlmd::api
