// Evaluation items from fine-tuning samples: each sample's last assistant turn is the
// reference; the conversation before it, with the generation prompt, is what the model
// completes. Scoring of predictions (per sample and over a set) and the results.jsonl lines
// (SWIFT's infer_result/*.jsonl, with per-sample scores). No torch; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/api/eval.h"
#include "core/engine/prompt.h"
#include "core/eval/metrics.h"
#include "core/train/dataset.h"

namespace vlmd::eval {

// One sample to generate for.
struct EvalItem {
  std::string source;               // file:line of the sample
  std::string query;                // the last user turn's text, images as <image>
  std::string reference;            // the last assistant turn's text
  std::vector<ChatMessage> prompt;  // every turn before the last assistant turn
  std::vector<ImageSource> images;  // the sample's images (all in prompt turns)
};

// INVALID_ARGUMENT naming file:line when the sample does not end with an assistant turn.
StatusOr<EvalItem> MakeEvalItem(const Sample& sample);
StatusOr<std::vector<EvalItem>> MakeEvalItems(const std::vector<Sample>& samples);

// The request for an item: its prompt turns + the generation prompt, its images, and the pixel
// limits (unset = the model's or the adapter's).
PromptInput ToPromptInput(const EvalItem& item, std::optional<int64_t> min_pixels = std::nullopt,
                          std::optional<int64_t> max_pixels = std::nullopt);

// Scores `prediction` against the item's reference.
api::EvalSampleResult ScoreSample(const EvalItem& item, const std::string& prediction);

// Sums scores over a set of samples.
class ScoreAccumulator {
 public:
  void Add(const api::EvalSampleResult& result);
  int64_t count() const { return count_; }
  // Means of exact_match, edit_distance_char and edit_distance_token, and corpus BLEU-4.
  void Fill(api::EvalSummary* summary) const;
  // The same as metrics named exact_match, edit_distance (characters), edit_distance_token and
  // bleu (what a training job reports as eval_<name>).
  std::map<std::string, double> Metrics() const;

 private:
  int64_t count_ = 0, exact_ = 0;
  double chars_ = 0, tokens_ = 0;
  BleuStats bleu_;
};

// One results.jsonl line (no newline): source, query, reference, prediction, exact_match,
// edit_distance, edit_distance_token, bleu, finish_reason, completion_tokens, error (when
// set), plus the fields of `extra`.
std::string ResultLine(const api::EvalSampleResult& result,
                       const std::map<std::string, std::string>& extra = {});
// summary.json: every field of `summary` plus `extra` (model, adapter, data sets, ...).
std::string SummaryJson(const api::EvalSummary& summary,
                        const std::map<std::string, std::string>& extra = {});

}  // namespace vlmd::eval
