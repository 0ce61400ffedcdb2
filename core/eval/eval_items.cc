#include "core/eval/eval_items.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vlmd::eval {
namespace {

using ordered_json = nlohmann::ordered_json;

std::string ContentText(const std::vector<ContentPart>& content) {
  std::string out;
  for (const ContentPart& part : content) {
    out += part.type == ContentPart::Type::kImage ? std::string("<image>") : part.text;
  }
  return out;
}

double OrZero(const std::optional<double>& v) { return v.value_or(0.0); }

}  // namespace

StatusOr<EvalItem> MakeEvalItem(const Sample& sample) {
  if (sample.messages.empty() || sample.messages.back().role != "assistant") {
    return absl::InvalidArgumentError(absl::StrCat(
        sample.file, ":", sample.line, ": the sample does not end with an assistant turn"));
  }
  EvalItem item;
  item.source = absl::StrCat(sample.file, ":", sample.line);
  item.reference = ContentText(sample.messages.back().content);
  item.prompt.assign(sample.messages.begin(), sample.messages.end() - 1);
  for (auto it = item.prompt.rbegin(); it != item.prompt.rend(); ++it) {
    if (it->role != "user") continue;
    item.query = ContentText(it->content);
    break;
  }
  item.images = sample.images;
  return item;
}

StatusOr<std::vector<EvalItem>> MakeEvalItems(const std::vector<Sample>& samples) {
  std::vector<EvalItem> items;
  items.reserve(samples.size());
  for (const Sample& sample : samples) {
    ASSIGN_OR_RETURN(EvalItem item, MakeEvalItem(sample));
    items.push_back(std::move(item));
  }
  return items;
}

PromptInput ToPromptInput(const EvalItem& item, std::optional<int64_t> min_pixels,
                          std::optional<int64_t> max_pixels) {
  PromptInput input;
  input.messages = item.prompt;
  input.images = item.images;
  input.min_pixels = min_pixels;
  input.max_pixels = max_pixels;
  input.add_generation_prompt = true;
  return input;
}

api::EvalSampleResult ScoreSample(const EvalItem& item, const std::string& prediction) {
  api::EvalSampleResult r;
  r.source = item.source;
  r.query = item.query;
  r.reference = item.reference;
  r.prediction = prediction;
  r.exact_match = ExactMatch(prediction, item.reference);
  r.edit_distance_char = EditSimilarityChars(prediction, item.reference);
  r.edit_distance_token = EditSimilarityTokens(prediction, item.reference);
  r.bleu = SentenceBleu(prediction, item.reference);
  return r;
}

void ScoreAccumulator::Add(const api::EvalSampleResult& result) {
  ++count_;
  exact_ += result.exact_match ? 1 : 0;
  chars_ += result.edit_distance_char;
  tokens_ += result.edit_distance_token;
  bleu_.Add(ComputeBleuStats(SplitTokens(result.prediction), SplitTokens(result.reference)));
}

void ScoreAccumulator::Fill(api::EvalSummary* summary) const {
  const double n = count_ > 0 ? static_cast<double>(count_) : 1.0;
  summary->samples = count_;
  summary->exact_match = static_cast<double>(exact_) / n;
  summary->edit_distance_char = chars_ / n;
  summary->edit_distance_token = tokens_ / n;
  summary->bleu = count_ > 0 ? CorpusBleu(bleu_) : 0.0;
}

std::map<std::string, double> ScoreAccumulator::Metrics() const {
  api::EvalSummary s;
  Fill(&s);
  return {{"exact_match", s.exact_match},
          {"edit_distance", s.edit_distance_char},
          {"edit_distance_token", s.edit_distance_token},
          {"bleu", s.bleu}};
}

std::string ResultLine(const api::EvalSampleResult& r,
                       const std::map<std::string, std::string>& extra) {
  ordered_json j;
  j["source"] = r.source;
  j["query"] = r.query;
  j["reference"] = r.reference;
  j["prediction"] = r.prediction;
  j["exact_match"] = r.exact_match;
  j["edit_distance"] = r.edit_distance_char;
  j["edit_distance_token"] = r.edit_distance_token;
  j["bleu"] = r.bleu;
  j["finish_reason"] = r.finish_reason;
  j["completion_tokens"] = r.completion_tokens;
  if (!r.error.empty()) j["error"] = r.error;
  for (const auto& [key, value] : extra) j[key] = value;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SummaryJson(const api::EvalSummary& s,
                        const std::map<std::string, std::string>& extra) {
  ordered_json j;
  j["samples"] = s.samples;
  j["exact_match"] = s.exact_match;
  j["edit_distance"] = s.edit_distance_char;
  j["edit_distance_token"] = s.edit_distance_token;
  j["bleu"] = s.bleu;
  j["eval_loss"] = s.eval_loss ? ordered_json(OrZero(s.eval_loss)) : ordered_json(nullptr);
  j["eval_acc"] = s.eval_acc ? ordered_json(OrZero(s.eval_acc)) : ordered_json(nullptr);
  j["seconds"] = s.seconds;
  j["samples_per_second"] = s.samples_per_second;
  j["failed"] = s.failed;
  j["completion_tokens"] = s.completion_tokens;
  j["tokens_per_second"] = s.tokens_per_second;
  j["results_path"] = s.results_path;
  for (const auto& [key, value] : extra) j[key] = value;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vlmd::eval
