// The slab decode path (GraphDecoder, eager on the CPU; replayed from CUDA graphs on a GPU)
// computes the same logits as the packed path with per-sequence caches.
#include "core/engine/graph_decoder.h"

#include <cstdlib>

#include "core/engine/model_bundle.h"
#include "core/engine/step.h"
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
