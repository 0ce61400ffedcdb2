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
  std::string finish_reason;       // stop, length (the answer was cut), or error
  int64_t completion_tokens = 0;
  std::string error;  // why generation failed (then prediction is "" and scored)
};

struct EvalSummary {
  int64_t samples = 0;
  double exact_match = 0;
  double edit_distance_char = 0;
  double edit_distance_token = 0;
  double bleu = 0;                 // corpus BLEU-4 on tokens
  std::optional<double> eval_loss, eval_acc;
  double seconds = 0;             // the whole evaluation
  double samples_per_second = 0;  // over the generation phase
  std::string results_path;       // results.jsonl (summary.json lies next to it)
  int64_t failed = 0;             // samples whose generation failed (scored as empty answers)
  int64_t completion_tokens = 0;  // generated tokens, all samples
  double tokens_per_second = 0;   // completion_tokens / seconds of generation
};

// Progress callback: (done, total, last finished sample), called from the Evaluate thread
// once per finished sample; during the teacher-forced pass that follows, (total, total,
// nullptr) between batches. Return false to cancel (Evaluate then returns CANCELLED).
using EvalProgress = std::function<bool(int64_t, int64_t, const EvalSampleResult*)>;

class EvalService {
 public:
  // Neither service is owned; `jobs` may be null (then job_id is refused).
  static std::unique_ptr<EvalService> Create(InferenceService* inference, JobService* jobs,
                                             std::vector<std::string> allowed_roots,
                                             std::string state_dir);
  virtual ~EvalService() = default;
  // Runs one evaluation (blocking; several may run at once). Writes results.jsonl (one line
  // per sample, in data order) and summary.json into the output directory. Errors:
  // INVALID_ARGUMENT (bad request, unusable data rows), NOT_FOUND (model, adapter, job,
  // checkpoint, data file), PERMISSION_DENIED (a path outside the allowed roots),
  // FAILED_PRECONDITION (job_id without a job service, the job's base model not served, no
  // validation split), CANCELLED, UNAVAILABLE (the inference service shuts down). A sample
  // whose request fails is recorded with its error and scored as an empty answer.
  virtual StatusOr<EvalSummary> Evaluate(const EvalRequest& request,
                                         const EvalProgress& progress) = 0;
};

}  // namespace vlmd::api
