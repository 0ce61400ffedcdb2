// Data-parallel training over several processes with torch.distributed's c10d: a TCPStore for
// the rendezvous, and a process group for the collectives: NCCL for ranks on GPUs, Gloo for
// ranks on the CPU (each where the build found its headers; core/train/CMakeLists.txt). One
// rank per GPU; rank 0 hosts the store. Internal to core/ (torch).
//
// The options come from the environment that torchrun and the Kubernetes training operators
// set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), or from the worker that
// launches its own ranks (core/api/worker.cc).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/base/status.h"

namespace vlmd {

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // the GPU index among the visible ones
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0 on rank 0: any free port (read it back with Collective::port)
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  // Where this rank trains: NCCL for a CUDA device, Gloo for the CPU.
  at::Device device{at::kCPU};
};

// The options in the environment (world_size 1 when WORLD_SIZE is unset; VLMD_DIST_TIMEOUT_S
// sets the collective timeout).
// INVALID_ARGUMENT naming the variable when one is malformed or out of range.
StatusOr<DistributedOptions> DistributedOptionsFromEnvironment();

// True when WORLD_SIZE is set in the environment (an external launcher started this process).
bool LaunchedExternally();

class Collective {
 public:
  // Joins the group: rank 0 starts the store, then `ready` (may be empty) gets the store's
  // port (rank 0 starts the other ranks there), then every rank waits for the others.
  // UNAVAILABLE naming the address when the rendezvous fails or times out.
  static StatusOr<std::unique_ptr<Collective>> Connect(
      const DistributedOptions& options, const std::function<Status(int port)>& ready = {});
  ~Collective();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The store's port (what rank 0 tells the ranks it starts).
  int port() const { return port_; }

  // Sums `tensor` over the ranks, in place (blocking). A host tensor on a CUDA rank is staged
  // through the device.
  void AllReduceSum(at::Tensor& tensor);
  // Sums every tensor in `tensors` over the ranks in one collective: they are packed into one
  // float32 buffer on their device, reduced, and copied back.
  void AllReduceSumPacked(const std::vector<at::Tensor>& tensors);
  void Barrier();

 private:
  Collective() = default;
  bool HasGroup() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, world_size_ = 1, port_ = 0;
  at::Device device_{at::kCPU};
};

}  // namespace vlmd
