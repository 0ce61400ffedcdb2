// AdamW with decoupled weight decay, the Hugging Face learning-rate schedules and gradient
// clipping, computed as torch.optim.AdamW / transformers / torch.nn.utils do.
// Internal to core/ (torch). Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace vlmd {

struct AdamWOptions {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);
  // One update with learning rate `lr` from each parameter's .grad() (parameters without a
  // gradient are skipped, as torch does).
  void Step(double lr);
  void ZeroGrad();
  int64_t steps() const { return step_; }
  // State for checkpoints: exp_avg and exp_avg_sq per parameter, and the step count.
  const std::vector<at::Tensor>& exp_avg() const { return exp_avg_; }
  const std::vector<at::Tensor>& exp_avg_sq() const { return exp_avg_sq_; }
  void Restore(std::vector<at::Tensor> exp_avg, std::vector<at::Tensor> exp_avg_sq, int64_t step);
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_, exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// The multiplier of the base learning rate after `step` optimizer steps, as transformers'
// get_{cosine,linear,constant}_schedule_with_warmup (warmup_steps = ceil(ratio * total)).
double LrMultiplier(const std::string& type, int64_t step, int64_t total_steps,
                    int64_t warmup_steps);
int64_t WarmupSteps(double warmup_ratio, int64_t total_steps);

// Scales gradients so their global L2 norm is at most `max_norm` (torch.nn.utils.
// clip_grad_norm_). Returns the norm before clipping. max_norm <= 0 only measures.
double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace vlmd
