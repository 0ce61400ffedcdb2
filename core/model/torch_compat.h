// The one place that hides API differences between Debian's libtorch 1.13 (CPU, CI) and the
// CUDA libtorch 2.x of the GPU machine. Internal to core/ (never included by server/).
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/api/include/torch/version.h>

#include <mutex>
#include <optional>

#define VLMD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#include <ATen/CPUGeneratorImpl.h>

#ifdef VLMD_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace vlmd::compat {

// The default random generator's state for a device (CPU or CUDA), and restoring it.
inline at::Tensor GeneratorState(const at::Device& device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
inline void SetGeneratorState(const at::Device& device, const at::Tensor& state) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Reseeds the default random generator of a device (CPU or CUDA).
inline void SeedDefaultGenerator(const at::Device& device, uint64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
}

// A random generator on `device` (CPU or CUDA) seeded with `seed`.
inline at::Generator MakeGenerator(const at::Device& device, uint64_t seed) {
#ifdef VLMD_CUDA
  if (device.is_cuda()) {
    at::Generator gen = at::cuda::detail::createCUDAGenerator(device.index());
    gen.set_current_seed(seed);
    return gen;
  }
#endif
  (void)device;
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

// Starts a new peak-memory window on a CUDA device (no-op elsewhere).
inline void ResetPeakMemory(const at::Device& device) {
#ifdef VLMD_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

// Waits for the device's queued work (no-op on the CPU).
inline void Synchronize(const at::Device& device) {
#ifdef VLMD_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

// Peak bytes allocated on a CUDA device in GiB (0 in CPU-only builds).
inline double CudaPeakMemoryGiB(int device) {
#ifdef VLMD_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
#else
  (void)device;
  return 0.0;
#endif
}

// softmax(q k^T * scale + mask) v over the last two dims, with the softmax in float32 and the
// result in q's dtype (the eager semantics of transformers). q [..., Lq, D], k/v [..., Lk, D];
// `mask` is boolean (true = attend), broadcastable to [..., Lq, Lk], or undefined.
// `use_fused` selects at::scaled_dot_product_attention where it exists (torch >= 2.0): the
// same math, computed by a fused kernel (numerically close, not bit-identical).
inline at::Tensor Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double scale, bool is_causal,
                            bool use_fused) {
#if VLMD_TORCH_AT_LEAST(2, 1)
  if (use_fused) {
    const int64_t lq = q.size(-2), lk = k.size(-2);
    c10::optional<at::Tensor> m;
    if (mask.defined()) m = mask;
    // SDPA's is_causal aligns the mask top-left; a query block after cached keys needs the
    // bottom-right alignment, so pass that mask explicitly.
    bool fused_causal = is_causal && lq == lk && !mask.defined();
    if (is_causal && !fused_causal) {
      at::Tensor causal = at::ones({lq, lk}, q.options().dtype(at::kBool)).tril(lk - lq);
      m = mask.defined() ? at::logical_and(mask, causal) : causal;
    }
    return at::scaled_dot_product_attention(q, k, v, m, 0.0, fused_causal, scale);
  }
#else
  (void)use_fused;
#endif
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * scale;
  if (is_causal) {
    int64_t lq = q.size(-2), lk = k.size(-2);
    at::Tensor causal = at::ones({lq, lk}, q.options().dtype(at::kBool)).tril(lk - lq);
    scores = scores.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (mask.defined()) {
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  }
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs, v);
}

// Decode attention of grouped-query heads over a padded cache: q [B, heads, 1, D],
// k/v [B, kv_heads, L, D] (kv_heads divides heads), mask bool [B, 1, 1, L] (true = attend).
// Capturable in a CUDA graph (no host synchronisation).
inline at::Tensor GqaDecodeAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& mask, double scale) {
#if VLMD_TORCH_AT_LEAST(2, 5)
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale, /*enable_gqa=*/true);
#else
  const int64_t groups = q.size(1) / k.size(1);
  auto expand = [&](const at::Tensor& x) {
    return x.unsqueeze(2)
        .expand({x.size(0), x.size(1), groups, x.size(2), x.size(3)})
        .reshape({x.size(0), x.size(1) * groups, x.size(2), x.size(3)});
  };
  return Attention(q, expand(k), expand(v), mask, scale, false, false);
#endif
}

}  // namespace vlmd::compat
