// vlmd_bench: time to first token and decode speed of vlmd's serving engine, with the same
// request shapes as ../shared/tools/hf_anchor.py (one image per request: 448x112 -> 64 image
// tokens, 448x448 -> 256; ~20 prompt text tokens; 128 new tokens, end-of-sequence ignored).
// Requests go through the in-process InferenceService (continuous batching), so the figures
// include scheduling, sampling and detokenisation, not just the network.
//
//   vlmd_bench --model DIR [--device cuda] [--dtype bfloat16] [--batches 1,8,32]
//              [--images 448x112,448x448] [--new-tokens 128] [--json OUT]
#include <CLI/CLI.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>

#include "absl/strings/str_split.h"
#include "core/api/inference.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using Clock = std::chrono::steady_clock;

// Collects one request's completion; thread-safe.
class WaitSink : public api::InferSink {
 public:
  void OnChunk(const api::InferChunk& chunk) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_) first_ = Clock::now();
    for (int32_t t : chunk.token_ids) hash_ = hash_ * 1000003u + static_cast<uint32_t>(t);
  }
  void OnDone(const StatusOr<GenerationResult>& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = Clock::now();
    ok_ = r.ok();
    if (r.ok()) tokens_ = r->usage.completion_tokens;
    else std::fprintf(stderr, "request failed: %s\n", std::string(r.status().message()).c_str());
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.has_value(); });
  }
  std::optional<Clock::time_point> first_, done_;
  bool ok_ = false;
  int64_t tokens_ = 0;
  uint64_t hash_ = 0;  // of the generated ids, to compare runs (graphs on/off)

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// An RGB image with smooth content and noise, PNG-encoded by nobody: raw bytes are not
// needed because the request carries a BMP built here (no encoder dependency).
std::string Bmp(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  int row = (w * 3 + 3) & ~3;
  std::string b(54 + row * h, '\0');
  auto put32 = [&](int at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = char(v >> (8 * i)); };
  b[0] = 'B'; b[1] = 'M';
  put32(2, b.size()); put32(10, 54); put32(14, 40); put32(18, w); put32(22, h);
  b[26] = 1; b[28] = 24; put32(34, row * h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        b[54 + y * row + x * 3 + c] = char((x * 3 + y * 5 + c * 60 + rng() % 32) & 255);
      }
    }
  }
  return b;
}

api::InferRequest MakeRequest(int w, int h, int new_tokens, uint32_t seed) {
  api::InferRequest r;
  // As hf_anchor.py: <|im_start|>system\n <vision> 20 text ids <|im_end|>\n<|im_start|>assistant\n
  std::vector<int32_t> ids = {151644, 8948, 198, 151652, 151655, 151653};
  for (int i = 0; i < 20; ++i) ids.push_back(1000 + i);
  for (int32_t t : {151645, 198, 151644, 77091, 198}) ids.push_back(t);
  r.prompt.prompt_ids = ids;
  r.prompt.images.push_back({"", Bmp(w, h, seed)});
  r.prompt.min_pixels = 3136;
  r.prompt.max_pixels = 12845056;
  r.sampling.max_new_tokens = new_tokens;
  r.sampling.temperature = 0.0;
  r.sampling.ignore_eos = true;
  return r;
}

struct Result {
  double ttft_ms = 0, total_s = 0, decode_ms_per_step = 0, tok_per_s = 0;
  uint64_t tokens_hash = 0;
};

Result RunBatch(api::InferenceService& service, int batch, int w, int h, int new_tokens) {
  std::vector<std::shared_ptr<WaitSink>> sinks;
  Clock::time_point start = Clock::now();
  for (int i = 0; i < batch; ++i) {
    auto sink = std::make_shared<WaitSink>();
    Status s = service.Submit(MakeRequest(w, h, new_tokens, 1234 + i), sink, nullptr);
    if (!s.ok()) std::fprintf(stderr, "submit failed: %s\n", std::string(s.message()).c_str());
    sinks.push_back(sink);
  }
  Result r;
  int64_t tokens = 0;
  Clock::time_point last_first = start, end = start;
  for (auto& s : sinks) {
    s->Wait();
    tokens += s->tokens_;
    r.tokens_hash = r.tokens_hash * 31 + s->hash_;
    if (s->first_ && *s->first_ > last_first) last_first = *s->first_;
    if (*s->done_ > end) end = *s->done_;
  }
  r.ttft_ms = std::chrono::duration<double, std::milli>(last_first - start).count();
  r.total_s = std::chrono::duration<double>(end - start).count();
  r.decode_ms_per_step = (r.total_s * 1e3 - r.ttft_ms) / std::max(1, new_tokens - 1);
  r.tok_per_s = tokens / r.total_s;
  return r;
}

}  // namespace
}  // namespace vlmd

int main(int argc, char** argv) {
  CLI::App app{"vlmd_bench: TTFT and decode throughput of the vlmd engine"};
  std::string model, device = "cuda", dtype = "bfloat16", batches = "1,8", images = "448x112,448x448", out;
  int new_tokens = 128;
  app.add_option("--model", model)->required();
  app.add_option("--device", device);
  app.add_option("--dtype", dtype);
  app.add_option("--batches", batches);
  app.add_option("--images", images);
  app.add_option("--new-tokens", new_tokens);
  app.add_option("--json", out);
  CLI11_PARSE(app, argc, argv);
  int max_batch = 1;
  for (absl::string_view b : absl::StrSplit(batches, ',')) {
    max_batch = std::max(max_batch, std::atoi(std::string(b).c_str()));
  }
  vlmd::api::InferenceConfig config;
  config.models.push_back({"bench", model, device, dtype});
  // The slab KV cache holds max_running x (max_prompt_tokens + max_new_tokens) tokens.
  config.limits.max_running = max_batch;
  config.limits.max_waiting = 1024;
  config.limits.max_prompt_tokens = 1024;
  config.limits.max_new_tokens = 512;
  config.limits.kv_cache_tokens = int64_t{max_batch} * 1536;
  config.limits.max_prefill_tokens = 1 << 16;
  auto service = vlmd::api::InferenceService::Create(config, nullptr);
  if (!service.ok()) {
    std::fprintf(stderr, "vlmd_bench: %s\n", std::string(service.status().message()).c_str());
    return 1;
  }
  nlohmann::json results;
  for (absl::string_view image : absl::StrSplit(images, ',')) {
    int w = 0, h = 0;
    std::sscanf(std::string(image).c_str(), "%dx%d", &w, &h);
    vlmd::RunBatch(**service, 1, w, h, 8);  // warm-up
    for (absl::string_view b : absl::StrSplit(batches, ',')) {
      int batch = std::atoi(std::string(b).c_str());
      vlmd::RunBatch(**service, batch, w, h, 16);  // warm-up: captures this batch's graphs
      vlmd::Result r = vlmd::RunBatch(**service, batch, w, h, new_tokens);
      std::string key = "infer_" + std::string(image) + "_b" + std::to_string(batch);
      results[key] = {{"ttft_ms", r.ttft_ms}, {"total_s", r.total_s},
                      {"decode_ms_per_step", r.decode_ms_per_step}, {"tok_per_s", r.tok_per_s}};
      std::printf("VLMD img=%s batch=%d: ttft %.1f ms, %.1f tok/s, decode step %.2f ms (ids %016llx)\n",
                  std::string(image).c_str(), batch, r.ttft_ms, r.tok_per_s, r.decode_ms_per_step,
                  static_cast<unsigned long long>(r.tokens_hash));
      std::fflush(stdout);
    }
  }
  if (!out.empty()) std::ofstream(out) << results.dump(2) << "\n";
  (*service)->Shutdown(std::chrono::milliseconds(1000));
  return 0;
}
