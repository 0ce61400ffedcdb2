#include "core/engine/graph_decoder.h"

#include <c10/core/InferenceMode.h>

#include <mutex>

#include "core/base/logging.h"

#ifdef VLMD_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace vlmd {
namespace {

#ifdef VLMD_CUDA
// One capture at a time in the process: every model's engine has its own thread and decoder.
std::mutex& CaptureMutex() {
  static std::mutex mu;
  return mu;
}

// After a capture that threw: ends the stream's capture if it is still open (else every later
// launch on that stream fails with "operation not permitted when stream is capturing"), stops
// routing the stream's allocations to the graph's pool and clears the error it left.
void AbortCapture(const at::cuda::CUDAStream& stream, at::cuda::MempoolId_t pool) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess &&
      status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream.stream(), &partial);
    if (partial != nullptr) cudaGraphDestroy(partial);
  }
  if (pool.first != 0 || pool.second != 0) {
    c10::cuda::CUDACachingAllocator::endAllocateToPool(stream.device_index(), pool);
  }
  (void)cudaGetLastError();
}
#endif

}  // namespace

struct GraphDecoder::Graph {
#ifdef VLMD_CUDA
  at::cuda::CUDAGraph graph;
#endif
  at::Tensor logits, argmax;  // outputs, stable across replays
};

GraphDecoder::GraphDecoder(std::shared_ptr<const Qwen2VL> model, int64_t slots, int64_t capacity,
                           bool use_graphs)
    : model_(std::move(model)),
      cache_(model_->config().text, slots, capacity, model_->dtype(), model_->device()) {
#ifdef VLMD_CUDA
  use_graphs_ = use_graphs && model_->device().is_cuda();
#else
  (void)use_graphs;
  use_graphs_ = false;
#endif
  auto options = at::TensorOptions().dtype(at::kLong).device(model_->device());
  ids_ = at::zeros({slots}, options);
  pos_ = at::zeros({slots}, options);
  len_ = at::zeros({slots}, options);
}

GraphDecoder::~GraphDecoder() = default;

int64_t GraphDecoder::Bucket(int64_t n, int64_t lo, int64_t hi) {
  int64_t b = lo;
  while (b < n && b < hi) b *= 2;
  return std::min(std::max(b, n), hi);
}

std::pair<at::Tensor, at::Tensor> GraphDecoder::Forward(int64_t batch, int64_t window) {
  at::Tensor ids = ids_.narrow(0, 0, batch);
  at::Tensor pos = pos_.narrow(0, 0, batch).unsqueeze(0).expand({3, batch});
  at::Tensor hidden =
      model_->DecodeSlab(model_->Embed(ids), pos, len_.narrow(0, 0, batch), &cache_, window);
  at::Tensor logits = model_->Logits(hidden).to(at::kFloat);
  return {logits, logits.argmax(-1)};
}

GraphDecoder::Graph* GraphDecoder::GraphFor(int64_t batch, int64_t window) {
  auto key = std::make_pair(batch, window);
  auto it = graphs_.find(key);
  if (it != graphs_.end()) return it->second.get();
  auto g = std::make_unique<Graph>();
#ifdef VLMD_CUDA
  std::lock_guard<std::mutex> lock(CaptureMutex());
  // Capture happens once per bucket: order the side stream by synchronising the device.
  c10::cuda::device_synchronize();
  at::cuda::CUDAStream stream = at::cuda::getStreamFromPool();
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    Forward(batch, window);  // warm-up: cuBLAS handles and workspaces exist before capture
    stream.synchronize();
    at::cuda::MempoolId_t pool = {0, 0};
    if (pool_.size() == 2)
      pool = {static_cast<uint64_t>(pool_[0]), static_cast<uint64_t>(pool_[1])};
    try {
      // Thread-local capture mode: another model's engine thread may launch work, allocate or
      // synchronise meanwhile (the global mode would make those calls fail and break this
      // capture).
      g->graph.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
      std::tie(g->logits, g->argmax) = Forward(batch, window);
      g->graph.capture_end();
    } catch (const std::exception& e) {
      AbortCapture(stream, g->graph.pool());
      use_graphs_ = false;
      VLMD_LOG(Error) << "CUDA graph capture for batch " << batch << ", window " << window
                      << " failed; this model decodes eagerly from now on: "
                      << std::string(e.what()).substr(0, 300);
      return nullptr;
    }
    at::cuda::MempoolId_t used = g->graph.pool();
    pool_ = {static_cast<int64_t>(used.first), static_cast<int64_t>(used.second)};
  }
  c10::cuda::device_synchronize();
  VLMD_LOG(Debug) << "captured decode graph for batch " << batch << ", window " << window;
#endif
  return (graphs_[key] = std::move(g)).get();
}

GraphDecoder::Result GraphDecoder::Step(const std::vector<int32_t>& tokens,
                                        const std::vector<int64_t>& positions,
                                        const std::vector<int64_t>& lengths) {
  c10::InferenceMode guard;
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t longest = 0;
  for (int64_t l : lengths) longest = std::max(longest, l + 1);
  const int64_t batch = use_graphs_ ? Bucket(n, 1, cache_.slots()) : n;
  const int64_t window = use_graphs_ ? Bucket(longest, 256, cache_.capacity()) : longest;
  // Rows past n belong to free slots: feed them token 0 at position 0.
  std::vector<int64_t> ids(batch, 0), pos(batch, 0), len(batch, 0);
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = tokens[i];
    pos[i] = positions[i];
    len[i] = lengths[i];
  }
  ids_.narrow(0, 0, batch).copy_(at::tensor(ids, at::kLong));
  pos_.narrow(0, 0, batch).copy_(at::tensor(pos, at::kLong));
  len_.narrow(0, 0, batch).copy_(at::tensor(len, at::kLong));
  Result r;
  Graph* g = use_graphs_ ? GraphFor(batch, window) : nullptr;
  if (g != nullptr) {
#ifdef VLMD_CUDA
    g->graph.replay();
#endif
    r.logits = g->logits.narrow(0, 0, n);
    r.argmax = g->argmax.narrow(0, 0, n).to(at::kCPU);
  } else {
    auto out = Forward(batch, window);
    r.logits = out.first.narrow(0, 0, n);
    r.argmax = out.second.narrow(0, 0, n).to(at::kCPU);
  }
  return r;
}

}  // namespace vlmd
