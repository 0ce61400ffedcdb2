#include "core/train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VLMD_HAVE_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // the Gloo process group is declared only under this switch
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef VLMD_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

// Reads an integer variable; `*out` keeps its value when the variable is unset.
Status ReadIntVariable(const char* name, int min, int max, int* out) {
  const char* text = std::getenv(name);
  if (text == nullptr) return absl::OkStatus();
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "=\"", text,
                                                   "\" must be an integer in [", min, ", ", max,
                                                   "]"));
  }
  *out = value;
  return absl::OkStatus();
}

// A c10 error's first line (the rest is a stack trace).
std::string FirstLine(const char* what) {
  std::string s(what);
  return s.substr(0, s.find('\n'));
}

}  // namespace

bool LaunchedExternally() { return std::getenv("WORLD_SIZE") != nullptr; }

StatusOr<DistributedOptions> DistributedOptionsFromEnvironment() {
  DistributedOptions o;
  RETURN_IF_ERROR(ReadIntVariable("WORLD_SIZE", 1, 4096, &o.world_size));
  RETURN_IF_ERROR(ReadIntVariable("RANK", 0, o.world_size - 1, &o.rank));
  RETURN_IF_ERROR(ReadIntVariable("LOCAL_RANK", 0, 1023, &o.local_rank));
  RETURN_IF_ERROR(ReadIntVariable("MASTER_PORT", 1, 65535, &o.master_port));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    o.master_addr = addr;
  }
  int timeout_s =
      static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(o.timeout).count());
  RETURN_IF_ERROR(ReadIntVariable("VLMD_DIST_TIMEOUT_S", 1, 86400, &timeout_s));
  o.timeout = std::chrono::seconds(timeout_s);
  if (o.world_size > 1 && o.master_port == 0) {
    return absl::InvalidArgumentError(
        "WORLD_SIZE > 1 needs MASTER_PORT (and MASTER_ADDR unless rank 0 runs on this host)");
  }
  return o;
}

// The backends this build has, for the error that names them.
std::string BuiltBackends() {
  std::string out;
#ifdef VLMD_HAVE_GLOO
  out += "gloo ";
#endif
#ifdef VLMD_HAVE_NCCL
  out += "nccl ";
#endif
  return out.empty() ? "none" : out.substr(0, out.size() - 1);
}

struct Collective::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
#ifdef VLMD_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef VLMD_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  void AllReduce(std::vector<at::Tensor>& tensors) {
#ifdef VLMD_HAVE_NCCL
    if (nccl) return (void)nccl->allreduce(tensors)->wait();
#endif
#ifdef VLMD_HAVE_GLOO
    if (gloo) return (void)gloo->allreduce(tensors)->wait();
#endif
  }
  void Barrier() {
#ifdef VLMD_HAVE_NCCL
    if (nccl) return (void)nccl->barrier()->wait();
#endif
#ifdef VLMD_HAVE_GLOO
    if (gloo) return (void)gloo->barrier()->wait();
#endif
  }
};

StatusOr<std::unique_ptr<Collective>> Collective::Connect(const DistributedOptions& options,
                                                          const std::function<Status(int)>& ready) {
  std::unique_ptr<Collective> c(new Collective());
  c->impl_ = std::make_unique<Impl>();
  c->rank_ = options.rank;
  c->world_size_ = options.world_size;
  const std::string where = absl::StrCat(options.master_addr, ":", options.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options.master_port);
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = static_cast<size_t>(options.world_size);
    store_options.waitWorkers = false;  // the process group's rendezvous waits for them
    store_options.timeout = options.timeout;
    c->impl_->store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
    c->port_ = c->impl_->store->getPort();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", options.rank, ": the rendezvous store at ",
                                               where, " failed: ", FirstLine(e.what())));
  }
  if (ready) RETURN_IF_ERROR(ready(c->port_));
  const std::string backend = options.device.is_cuda() ? "nccl" : "gloo";
  c->device_ = options.device;
  try {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("vlmd/train", c->impl_->store);
#ifdef VLMD_HAVE_NCCL
    if (backend == "nccl") {
      c10::cuda::set_device(options.device.index());
      auto group_options = c10d::ProcessGroupNCCL::Options::create();
      group_options->timeout = options.timeout;
      c->impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          prefixed, options.rank, options.world_size, group_options);
    }
#endif
#ifdef VLMD_HAVE_GLOO
    if (backend == "gloo") {
      auto group_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname) {
        group_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        group_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      c->impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
          prefixed, options.rank, options.world_size, group_options);
    }
#endif
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "rank ", options.rank, " of ", options.world_size, ": joining the ", backend,
        " process group at ", options.master_addr, ":", c->port_, " failed (waited up to ",
        std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count(),
        " s for the other ranks): ", FirstLine(e.what())));
  }
  if (!c->HasGroup()) {
    return absl::FailedPreconditionError(
        absl::StrCat("data-parallel training on ", options.device.str(), " needs the ", backend,
                     " backend, which this build lacks (it has: ", BuiltBackends(), ")"));
  }
  return c;
}

Collective::~Collective() = default;

bool Collective::HasGroup() const {
#ifdef VLMD_HAVE_NCCL
  if (impl_->nccl) return true;
#endif
#ifdef VLMD_HAVE_GLOO
  if (impl_->gloo) return true;
#endif
  return false;
}

void Collective::AllReduceSum(at::Tensor& tensor) {
  // NCCL reduces device tensors only: host values (counts, flags) travel through the device.
  const bool staged = tensor.device() != device_ && device_.is_cuda();
  std::vector<at::Tensor> tensors{staged ? tensor.to(device_) : tensor};
  impl_->AllReduce(tensors);
  if (staged) tensor.copy_(tensors[0]);
}

void Collective::AllReduceSumPacked(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) return;
  std::vector<at::Tensor> flat;
  for (const at::Tensor& t : tensors) flat.push_back(t.reshape({-1}).to(at::kFloat));
  at::Tensor buffer = at::cat(flat);
  AllReduceSum(buffer);
  int64_t offset = 0;
  for (const at::Tensor& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(buffer.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

void Collective::Barrier() { impl_->Barrier(); }

}  // namespace vlmd
