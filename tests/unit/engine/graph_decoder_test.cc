// The slab decode path (GraphDecoder, eager on the CPU; replayed from CUDA graphs on a GPU)
// computes the same logits as the packed path with per-sequence caches.
#include "core/engine/graph_decoder.h"

#include <cstdlib>

#include "core/engine/model_bundle.h"
#include "core/engine/step.h"
#include "core/vision/image.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

// VLMD_TEST_DEVICE=cuda VLMD_TEST_DTYPE=bfloat16 runs it with CUDA graphs on the GPU machine,
// where the two paths use different attention kernels: logits then agree to bf16 precision.
TEST(GraphDecoder, DecodeStepEqualsThePackedPath) {
  ModelOptions options;
  const char* device = std::getenv("VLMD_TEST_DEVICE");
  const char* dtype = std::getenv("VLMD_TEST_DTYPE");
  if (device != nullptr) options.device = device;
  if (dtype != nullptr) options.dtype = dtype;
  const bool low = dtype != nullptr && std::string(dtype) != "float32";
  auto bundle = ModelBundle::Load(std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/models/gqa_tied",
                                  options, "");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const Qwen2VL& model = *(*bundle)->model;
  c10::InferenceMode guard;
  std::vector<std::vector<int32_t>> prompts = {{1007, 5, 9, 300, 1001, 198, 1007},
                                               {1007, 77, 1001, 198, 1007}};
  GraphDecoder decoder((*bundle)->model, /*slots=*/4, /*capacity=*/64,
                       /*use_graphs=*/model.device().is_cuda());
  std::vector<KvCache> own;
  std::vector<int32_t> next;
  std::vector<int64_t> positions, lengths;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (bool slab : {true, false}) {
      KvCache cache = slab ? decoder.cache().Slot(static_cast<int64_t>(i))
                           : KvCache(model.config().text, 64, model.dtype(), model.device());
      int64_t delta = 0;
      StepSequence s = PrefillSequence(model, prompts[i], nullptr, &delta);
      s.cache = &cache;
      at::Tensor h = RunStep(model, {s});
      if (!slab) {
        own.push_back(cache);
        next.push_back(static_cast<int32_t>(model.Logits(h)[-1].argmax().item<int64_t>()));
        positions.push_back(static_cast<int64_t>(prompts[i].size()) + delta);
        lengths.push_back(static_cast<int64_t>(prompts[i].size()));
      }
    }
  }
  GraphDecoder::Result r = decoder.Step(next, positions, lengths);
  std::vector<StepSequence> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs.push_back(DecodeSequence(next[i], lengths[i], positions[i] - lengths[i]));
    seqs.back().cache = &own[i];
  }
  at::Tensor packed = model.Logits(RunStep(model, seqs)).to(at::kFloat);
  double diff = (r.logits - packed).abs().max().item<double>();
  double scale = packed.abs().max().item<double>();
  std::printf("  slab vs packed max|diff| %.3g (max|logit| %.3g)\n", diff, scale);
  EXPECT_LE(diff, (low ? 0.02 : 1e-5) * std::max(1.0, scale));
  if (!low) EXPECT_TRUE(at::equal(r.argmax, packed.argmax(-1).to(at::kCPU)));
}

}  // namespace
}  // namespace vlmd

namespace vlmd {
namespace {

// A decode row whose token is the image placeholder id (a sampled token can be anything) next
// to a prefill row with an image: the image features go to the prefill row's placeholders
// only. (The placeholder was once counted in the decode row too: a count mismatch, which on
// CUDA is a device-side assert that kills the server.) Each row's output equals running it
// alone.
TEST(RunStep, ADecodedPlaceholderTokenIsNotAnImageSlot) {
  auto bundle = ModelBundle::Load(std::string(VLMD_SOURCE_DIR) + "/tests/fixtures/models/gqa_tied",
                                  ModelOptions{}, "");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const Qwen2VL& model = *(*bundle)->model;
  c10::InferenceMode guard;
  const int32_t image = static_cast<int32_t>(model.config().image_token_id);
  RgbImage pixels{56, 56, std::vector<uint8_t>(56 * 56 * 3)};
  for (size_t i = 0; i < pixels.pixels.size(); ++i) pixels.pixels[i] = static_cast<uint8_t>(i * 7);
  PreprocessOptions options;
  options.min_pixels = 56 * 56;
  auto patches = PreprocessImage(pixels, options);
  ASSERT_TRUE(patches.ok()) << patches.status();
  ImageBatch images = ToImageBatch({*patches});
  const int64_t tokens = patches->num_patches() / 4;  // 2x2 merge
  std::vector<int32_t> prompt = {1007, 5, 1002};
  for (int64_t i = 0; i < tokens; ++i) prompt.push_back(image);
  prompt.insert(prompt.end(), {1003, 9, 1007});

  KvCache decode_cache(model.config().text, 32, model.dtype(), model.device());
  int64_t warm_delta = 0;
  StepSequence warm = PrefillSequence(model, {1007, 77, 1001}, nullptr, &warm_delta);
  warm.cache = &decode_cache;
  RunStep(model, {warm});
  auto copy_of = [&](KvCache& cache) {
    std::vector<at::Tensor> keys, values;
    for (int l = 0; l < model.config().text.num_hidden_layers; ++l) {
      keys.push_back(cache.keys(l).clone());
      values.push_back(cache.values(l).clone());
    }
    return KvCache(keys, values);
  };

  auto run = [&](bool together) {
    KvCache prefill_cache(model.config().text, 32, model.dtype(), model.device());
    KvCache decode_copy = copy_of(decode_cache);
    int64_t delta = 0;
    StepSequence prefill = PrefillSequence(model, prompt, &images, &delta);
    prefill.cache = &prefill_cache;
    StepSequence decode = DecodeSequence(image, 3, 0);
    decode.cache = &decode_copy;
    if (together) return RunStep(model, {prefill, decode});
    return at::cat({RunStep(model, {prefill}), RunStep(model, {decode})});
  };
  at::Tensor together = run(true), alone = run(false);
  ASSERT_EQ(together.size(0), static_cast<int64_t>(prompt.size()) + 1);
  EXPECT_LT((together - alone).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace vlmd
