// Decode steps over a slab KV cache, replayed from CUDA graphs. The serving engine keeps its
// running sequences in slots [0, n) of the slab; a decode step for n sequences runs the graph
// captured for the smallest batch bucket >= n and cache-window bucket >= the longest sequence,
// so one step costs a few input copies and one graph launch instead of ~30 kernel launches per
// layer. On the CPU (or when graphs are off) the same computation runs eagerly.
// Internal to core/ (torch). Not thread-safe: owned by the engine's scheduler thread.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <vector>

#include "core/model/qwen2vl.h"

namespace vlmd {

class GraphDecoder {
 public:
  // `slots` sequences of up to `capacity` tokens. Graphs are used when `use_graphs` and the
  // model is on CUDA in a CUDA build.
  GraphDecoder(std::shared_ptr<const Qwen2VL> model, int64_t slots, int64_t capacity,
               bool use_graphs);
  ~GraphDecoder();

  SlabCache& cache() { return cache_; }
  bool graphs() const { return use_graphs_; }

  struct Result {
    at::Tensor logits;  // [n, vocab] float32 on the model's device
    at::Tensor argmax;  // [n] int64 on the CPU
  };
  // One token for each sequence in slots [0, n): its input token, M-RoPE position (decode
  // positions are equal on all three streams) and cached length (its key/value goes there).
  Result Step(const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions,
              const std::vector<int64_t>& lengths);

 private:
  struct Graph;
  static int64_t Bucket(int64_t n, int64_t lo, int64_t hi);
  // The graph body: reads the static inputs' first `batch` rows.
  std::pair<at::Tensor, at::Tensor> Forward(int64_t batch, int64_t window);
  // The graph of a bucket, captured on first use; null when the capture failed (graphs are
  // then off for this decoder and the step runs eagerly).
  Graph* GraphFor(int64_t batch, int64_t window);

  std::shared_ptr<const Qwen2VL> model_;
  SlabCache cache_;
  bool use_graphs_;
  at::Tensor ids_, pos_, len_;  // static device inputs, [slots] int64
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Graph>> graphs_;
  std::vector<int64_t> pool_;  // the graphs' shared memory pool id (CUDA builds)
};

}  // namespace vlmd
