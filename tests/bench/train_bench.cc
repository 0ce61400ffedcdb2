// vlmd_train_bench: one LoRA training step of vlmd's trainer with the shapes of
// ../shared/tools/hf_anchor.py (batch 4; one image per sample, 448x112 -> 64 image tokens or
// 448x448 -> 256; 100 text tokens of which the last 80 are labels; r 8, alpha 32, dropout 0.05
// on every LLM linear layer; gradient checkpointing; AdamW). Reports ms/step, samples/s and
// peak GPU memory.
//
//   vlmd_train_bench --model DIR [--device cuda] [--dtype bfloat16] [--json OUT]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "core/model/torch_compat.h"
#include "core/train/trainer.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

TrainExample MakeExample(int64_t gh, int64_t gw, int seed) {
  TrainExample ex;
  ex.ids = {151644, 8948, 198, 151652};
  for (int64_t i = 0; i < gh * gw / 4; ++i) ex.ids.push_back(151655);
  ex.ids.push_back(151653);
  for (int i = 0; i < 100; ++i) ex.ids.push_back(1000 + i);
  for (int32_t t : {151645, 198, 151644, 77091, 198}) ex.ids.push_back(t);
  ex.labels.assign(ex.ids.size(), -100);
  for (size_t i = ex.ids.size() - 80; i < ex.ids.size(); ++i) ex.labels[i] = ex.ids[i];
  at::manual_seed(seed);
  ex.images.pixel_values = at::randn({gh * gw, 1176});
  ex.images.grids = {{1, gh, gw}};
  return ex;
}

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

nlohmann::json Bench(const Qwen2VL& model, int64_t gh, int64_t gw) {
  JobSpec spec;
  spec.model = "bench";
  auto adapter = CreateTrainableAdapter(spec, model, 0);
  std::vector<at::Tensor> params;
  for (auto& [name, m] : (*adapter)->modules) {
    params.push_back(m.a);
    params.push_back(m.b);
  }
  AdamW opt(params, AdamWOptions{});
  std::vector<TrainExample> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(MakeExample(gh, gw, i));
  std::vector<const TrainExample*> ptrs;
  for (const auto& ex : batch) ptrs.push_back(&ex);
  StepOptions options;
  options.lora_dropout = 0.05;
  options.gradient_checkpointing = true;
  options.loss_scale = 1.0 / (4 * 80);
  compat::ResetPeakMemory(model.device());
  auto start = std::chrono::steady_clock::now();
  const int warmup = 2, steps = 6;
  for (int i = 0; i < warmup + steps; ++i) {
    if (i == warmup) {
      compat::Synchronize(model.device());
      start = std::chrono::steady_clock::now();
    }
    ForwardBackward(model, **adapter, ptrs, options);
    ClipGradNorm(params, 1.0);
    opt.Step(1e-4);
    opt.ZeroGrad();
  }
  compat::Synchronize(model.device());
  double step_s = Seconds(start) / steps;
  double peak = compat::CudaPeakMemoryGiB(model.device().index());
  std::printf("VLMD LORA img=%ldx%ld batch=4 seq=%zu: %.1f ms/step, %.2f samples/s, peak %.1f GiB\n",
              gw * 14, gh * 14, batch[0].ids.size(), step_s * 1e3, 4 / step_s, peak);
  std::fflush(stdout);
  return {{"step_s", step_s}, {"samples_per_s", 4 / step_s}, {"peak_gib", peak},
          {"seq", batch[0].ids.size()}};
}

}  // namespace
}  // namespace vlmd

int main(int argc, char** argv) {
  CLI::App app{"vlmd_train_bench"};
  std::string model_dir, device = "cuda", dtype = "bfloat16", out;
  app.add_option("--model", model_dir)->required();
  app.add_option("--device", device);
  app.add_option("--dtype", dtype);
  app.add_option("--json", out);
  CLI11_PARSE(app, argc, argv);
  vlmd::ModelOptions options;
  options.device = device;
  options.dtype = dtype;
  auto model = vlmd::Qwen2VL::Load(model_dir, options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  nlohmann::json results;
  results["lora_448x112_b4"] = vlmd::Bench(**model, 8, 32);
  results["lora_448x448_b4"] = vlmd::Bench(**model, 32, 32);
  if (!out.empty()) std::ofstream(out) << results.dump(2) << "\n";
  return 0;
}
