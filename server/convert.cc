#include "server/convert.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace vlmd::server {
namespace {

Status AddPart(const v1::ContentPart& part, const std::string& where, PromptInput* prompt,
               ChatMessage* message) {
  ContentPart out;
  switch (part.part_case()) {
    case v1::ContentPart::kText:
      out.type = ContentPart::Type::kText;
      out.text = part.text();
      break;
    case v1::ContentPart::kImage: {
      const v1::Image& image = part.image();
      ImageSource source;
      if (image.source_case() == v1::Image::kData) {
        if (image.data().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ".image.data is empty"));
        }
        source.bytes = image.data();
      } else if (image.source_case() == v1::Image::kPath) {
        if (image.path().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ".image.path is empty"));
        }
        source.path = image.path();
      } else {
        return absl::InvalidArgumentError(absl::StrCat(where, ".image has neither data nor path"));
      }
      prompt->images.push_back(std::move(source));
      out.type = ContentPart::Type::kImage;
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(where, " has neither text nor image"));
  }
  message->content.push_back(std::move(out));
  return absl::OkStatus();
}

// "3136..1003520" -> (3136, 1003520); zeros when the text has another form.
std::pair<int64_t, int64_t> ParsePixelRange(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, "..");
  int64_t lo = 0, hi = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &lo) || !absl::SimpleAtoi(parts[1], &hi)) {
    return {0, 0};
  }
  return {lo, hi};
}

// Bytes that are not UTF-8 become U+FFFD, so a proto3 string field always parses at the
// client (the engine's decoder should never produce such bytes; this is a safety net).
std::string ValidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len > 1) {  // reject overlong forms and surrogates
      uint32_t cp = c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

SamplingRequest SamplingFromProto(const v1::GenerationParams& p) {
  SamplingRequest s;
  if (p.has_max_new_tokens()) s.max_new_tokens = p.max_new_tokens();
  if (p.has_temperature()) s.temperature = p.temperature();
  if (p.has_top_p()) s.top_p = p.top_p();
  if (p.has_top_k()) s.top_k = p.top_k();
  if (p.has_repetition_penalty()) s.repetition_penalty = p.repetition_penalty();
  if (p.has_seed()) s.seed = p.seed();
  s.stop.assign(p.stop().begin(), p.stop().end());
  s.top_logprobs = p.top_logprobs();
  s.logprobs = p.logprobs() || p.top_logprobs() > 0;
  s.ignore_eos = p.ignore_eos();
  return s;
}

StatusOr<api::InferRequest> FromProto(const v1::InferRequest& request) {
  api::InferRequest out;
  out.request_id = request.request_id();
  out.model = request.model();
  out.adapter = request.adapter();
  for (int i = 0; i < request.messages_size(); ++i) {
    const v1::ChatMessage& m = request.messages(i);
    ChatMessage message;
    message.role = m.role();
    for (int j = 0; j < m.content_size(); ++j) {
      std::string where = absl::StrCat("messages[", i, "].content[", j, "]");
      RETURN_IF_ERROR(AddPart(m.content(j), where, &out.prompt, &message));
    }
    out.prompt.messages.push_back(std::move(message));
  }
  if (request.has_min_pixels()) out.prompt.min_pixels = request.min_pixels();
  if (request.has_max_pixels()) out.prompt.max_pixels = request.max_pixels();
  out.sampling = SamplingFromProto(request.params());
  return out;
}

std::optional<std::chrono::steady_clock::time_point> SteadyDeadline(
    std::chrono::system_clock::time_point deadline) {
  using namespace std::chrono;
  // gRPC reports "no deadline" as a time far in the future; a year out counts as none.
  auto left = deadline - system_clock::now();
  if (deadline == system_clock::time_point::max() || left > hours(24 * 365)) return std::nullopt;
  return steady_clock::now() + duration_cast<steady_clock::duration>(left);
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void ToProto(const TokenLogprob& in, v1::TokenLogprob* out) {
  out->set_token_id(in.token_id);
  out->set_logprob(in.logprob);
  for (const auto& [id, logprob] : in.top) {
    v1::TopLogprob* t = out->add_top_logprobs();
    t->set_token_id(id);
    t->set_logprob(logprob);
  }
}

void ToProto(const Usage& in, v1::Usage* out) {
  out->set_prompt_tokens(in.prompt_tokens);
  out->set_image_tokens(in.image_tokens);
  out->set_completion_tokens(in.completion_tokens);
}

void ToProto(const Timings& in, v1::Timings* out) {
  out->set_queue_ms(in.queue_ms);
  out->set_time_to_first_token_ms(in.ttft_ms);
  out->set_total_ms(in.total_ms);
}

void ToProto(const api::ModelInfo& in, v1::ModelInfo* out) {
  out->set_name(in.name);
  out->set_path(in.path);
  out->set_device(in.device);
  out->set_dtype(in.dtype);
  out->set_vocab_size(in.vocab_size);
  out->set_hidden_size(in.hidden_size);
  out->set_num_layers(in.num_layers);
  out->set_parameters(in.parameters);
  out->set_load_seconds(in.load_seconds);
  auto [lo, hi] = ParsePixelRange(in.min_max_pixels);
  out->set_min_pixels(lo);
  out->set_max_pixels(hi);
}

void ToProto(const api::AdapterInfo& in, v1::AdapterInfo* out) {
  out->set_name(in.name);
  out->set_path(in.path);
  out->set_model(in.model);
  out->set_rank(in.rank);
  out->set_alpha(in.alpha);
  for (const std::string& m : in.target_modules) out->add_target_modules(m);
  out->set_modules(in.modules);
  if (in.min_pixels) out->set_min_pixels(*in.min_pixels);
  if (in.max_pixels) out->set_max_pixels(*in.max_pixels);
}

void ToProto(const RequestNames& names, const GenerationResult& result, v1::InferResponse* out) {
  out->set_request_id(names.id);
  out->set_model(names.model);
  out->set_adapter(names.adapter);
  out->set_text(ValidUtf8(result.text));
  out->mutable_token_ids()->Add(result.token_ids.begin(), result.token_ids.end());
  out->set_finish_reason(ToProto(result.finish_reason));
  for (const TokenLogprob& lp : result.logprobs) ToProto(lp, out->add_logprobs());
  ToProto(result.usage, out->mutable_usage());
  ToProto(result.timings, out->mutable_timings());
}

void AppendToProto(const api::InferChunk& chunk, v1::InferDelta* out) {
  out->mutable_text()->append(ValidUtf8(chunk.text));
  out->mutable_token_ids()->Add(chunk.token_ids.begin(), chunk.token_ids.end());
  for (const TokenLogprob& lp : chunk.logprobs) ToProto(lp, out->add_logprobs());
}

void ToProto(const RequestNames& names, const GenerationResult& result, v1::InferDone* out) {
  out->set_request_id(names.id);
  out->set_model(names.model);
  out->set_adapter(names.adapter);
  out->set_finish_reason(ToProto(result.finish_reason));
  ToProto(result.usage, out->mutable_usage());
  ToProto(result.timings, out->mutable_timings());
}

}  // namespace vlmd::server
