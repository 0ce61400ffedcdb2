// The Qwen2-VL network (spec/qwen2vl.md §4-§7): vision tower + merger, M-RoPE, Qwen2 decoder,
// lm_head, over packed batches of sequences with a slot-based KV cache. Internal to core/
// (torch); server/ reaches it only through core/api.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/io/model_config.h"
#include "core/model/lora.h"
#include "core/model/weights.h"

namespace vlmd {

// Where and how a model runs.
struct ModelOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  std::string dtype = "auto";  // "float32", "bfloat16", "float16"; auto = f32 on CPU, bf16 on CUDA
  bool fused_attention = true;  // at::scaled_dot_product_attention where available (CUDA only)
};

using GridThw = std::array<int64_t, 3>;

// The keys and values of one sequence, per layer [capacity, kv_heads, head_dim], allocated
// once for the whole request (prompt + max new tokens). Not thread-safe.
class KvCache {
 public:
  KvCache(const TextConfig& config, int64_t capacity, at::ScalarType dtype, at::Device device);
  // A cache over existing tensors (e.g. one slot of a SlabCache), per layer [capacity, kv, D].
  KvCache(std::vector<at::Tensor> keys, std::vector<at::Tensor> values);
  int64_t capacity() const { return capacity_; }
  at::Tensor& keys(int layer) { return keys_[layer]; }
  at::Tensor& values(int layer) { return values_[layer]; }
  // Bytes held by one token of cache for `config` in `dtype`.
  static int64_t BytesPerToken(const TextConfig& config, at::ScalarType dtype);

 private:
  int64_t capacity_;
  std::vector<at::Tensor> keys_, values_;
};

// Keys and values of many sequences in one allocation: per layer [slots, capacity, kv, D].
// The decode path for CUDA graphs reads rows [0, B) of it directly. Not thread-safe.
class SlabCache {
 public:
  SlabCache(const TextConfig& config, int64_t slots, int64_t capacity, at::ScalarType dtype,
            at::Device device);
  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }
  std::vector<at::Tensor>& keys() { return keys_; }
  std::vector<at::Tensor>& values() { return values_; }
  // A KvCache viewing slot `slot`.
  KvCache Slot(int64_t slot);
  // Copies the first `length` positions of slot `from` into slot `to`.
  void MoveSlot(int64_t from, int64_t to, int64_t length);

 private:
  int64_t slots_, capacity_;
  std::vector<at::Tensor> keys_, values_;
};

// One sequence inside a packed forward pass.
struct SeqSpan {
  int64_t begin = 0;          // first row in the packed activations
  int64_t length = 0;         // new tokens this pass
  int64_t past = 0;           // tokens already in the cache
  KvCache* cache = nullptr;   // null = attend only within this pass (training, dump)
};

// An immutable loaded model; all methods are const and may run concurrently on different
// caches and batches.
class Qwen2VL {
 public:
  static StatusOr<std::shared_ptr<const Qwen2VL>> Load(const std::string& dir,
                                                       const ModelOptions& options);
  // Builds from already-loaded parts (init-model, merge, tests).
  Qwen2VL(ModelConfig config, ModelWeights weights, at::ScalarType dtype, at::Device device,
          bool fused_attention);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

  // Vision tower + merger: pixel rows [patches, patch_dim] (float32, any device) of images
  // with the given grids -> [patches / merge^2, hidden] in the model dtype. `adapters` gives
  // each image's adapter (nullptr or an empty vector = none).
  at::Tensor EncodeImages(const at::Tensor& pixel_values, const std::vector<GridThw>& grids,
                          const std::vector<const LoraAdapter*>& adapters = {},
                          double lora_dropout = 0.0, bool training = false) const;
  // Embeddings of `ids` with the image placeholders replaced, in order, by `image_embeds`.
  // Throws std::runtime_error when the counts differ (checked on the host: on CUDA a mismatch
  // would otherwise be a device-side assert that ends the process).
  at::Tensor EmbedWithImages(const at::Tensor& ids, const at::Tensor& image_embeds) const;
  // The same with the rows to replace given (host indices into `ids`, one per image_embeds
  // row): a placeholder id elsewhere (a generated token, a decode row) stays a plain embedding.
  at::Tensor EmbedWithImageRows(const at::Tensor& ids, const at::Tensor& image_embeds,
                                const std::vector<int64_t>& rows) const;
  // Token embeddings [T] -> [T, hidden].
  at::Tensor Embed(const at::Tensor& ids) const;
  // Rotary cos/sin [T, head_dim] for positions [3, T].
  std::pair<at::Tensor, at::Tensor> RotaryTables(const at::Tensor& positions) const;
  // One decoder layer over packed rows; writes each sequence's new keys/values into its cache.
  at::Tensor DecoderLayer(int layer, const at::Tensor& hidden,
                          const std::pair<at::Tensor, at::Tensor>& rotary,
                          const std::vector<SeqSpan>& seqs, const LoraContext* lora) const;
  // All layers + final norm: [T, hidden] -> [T, hidden].
  at::Tensor Decode(const at::Tensor& hidden, const at::Tensor& positions,
                    const std::vector<SeqSpan>& seqs, const LoraContext* lora) const;
  // One decode token for each of the sequences in rows [0, B) of `cache`: hidden [B, H],
  // positions [3, B], lengths [B] (int64, cached tokens before this one; the new key/value is
  // written there). Attends over the first `window` cache positions (masked to lengths + 1).
  // Device-only work: capturable in a CUDA graph. Returns final-normed hidden [B, H].
  at::Tensor DecodeSlab(const at::Tensor& hidden, const at::Tensor& positions,
                        const at::Tensor& lengths, SlabCache* cache, int64_t window) const;
  // Final-normed hidden -> logits [T, vocab] (model dtype).
  at::Tensor Logits(const at::Tensor& hidden) const;
  // Final RMSNorm.
  at::Tensor FinalNorm(const at::Tensor& hidden) const;

 private:
  at::Tensor VisionBlock(const VisionBlockWeights& w, const at::Tensor& x,
                         const std::pair<at::Tensor, at::Tensor>& rotary,
                         const std::vector<int64_t>& segments, const LoraContext* lora) const;
  at::Tensor Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const std::vector<SeqSpan>& seqs, int layer) const;

  ModelConfig config_;
  ModelWeights weights_;
  at::ScalarType dtype_;
  at::Device device_;
  bool fused_attention_;
  at::Tensor text_inv_freq_, vision_inv_freq_;  // float32
  at::Tensor stream_of_freq_;                   // int64 [head_dim/2]: 0=T, 1=H, 2=W
};

// Parses "float32"/"bfloat16"/"float16"/"auto" for a device.
StatusOr<at::ScalarType> ParseDtype(const std::string& name, const at::Device& device);
StatusOr<at::Device> ParseDevice(const std::string& name);

// get_rope_index (spec §6.1) for one unpadded sequence: positions [3][L] and the delta that
// decode steps add to the cache position.
struct RopeIndex {
  std::vector<int64_t> t, h, w;
  int64_t delta = 0;
};
RopeIndex ComputeRopeIndex(const std::vector<int32_t>& ids, const ModelConfig& config,
                           const std::vector<GridThw>& grids);

}  // namespace vlmd
