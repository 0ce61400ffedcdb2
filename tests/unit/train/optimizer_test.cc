// AdamW, schedules and clipping against values computed by hand from torch's formulas.
#include <cmath>

#include "core/train/optimizer.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

TEST(AdamW, TwoStepsMatchTheClosedForm) {
  at::Tensor p = at::tensor({1.0f, -2.0f}).requires_grad_(true);
  AdamW opt({p}, AdamWOptions{0.1, 0.9, 0.95, 1e-8, 0.1});
  p.mutable_grad() = at::tensor({0.5f, -1.0f});
  opt.Step(0.1);
  // step 1: p *= 1 - lr*wd; m = 0.1 g; v = 0.05 g^2; m_hat = g; v_hat = g^2 -> p -= lr*sign(g)
  double p0 = 1.0 * (1 - 0.01) - 0.1 * 0.5 / (0.5 + 1e-8);
  EXPECT_NEAR(p[0].item<double>(), p0, 1e-6);
  p.mutable_grad() = at::tensor({0.25f, -1.0f});
  opt.Step(0.05);
  double m = 0.9 * 0.05 + 0.1 * 0.25, v = 0.95 * 0.05 * 0.25 + 0.05 * 0.0625;
  double expected = p0 * (1 - 0.05 * 0.1) -
                    (0.05 / (1 - 0.81)) * m / (std::sqrt(v) / std::sqrt(1 - 0.9025) + 1e-8);
  EXPECT_NEAR(p[0].item<double>(), expected, 1e-6);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(Schedule, CosineWithWarmupAsTransformers) {
  EXPECT_EQ(WarmupSteps(0.05, 100), 5);
  EXPECT_EQ(WarmupSteps(0.05, 10), 1);  // ceil
  EXPECT_DOUBLE_EQ(LrMultiplier("cosine", 0, 100, 5), 0.0);
  EXPECT_DOUBLE_EQ(LrMultiplier("cosine", 2, 100, 5), 0.4);
  EXPECT_DOUBLE_EQ(LrMultiplier("cosine", 5, 100, 5), 1.0);
  EXPECT_NEAR(LrMultiplier("cosine", 52, 100, 5), 0.5 * (1 + std::cos(M_PI * 47.0 / 95.0)), 1e-12);
  EXPECT_NEAR(LrMultiplier("cosine", 100, 100, 5), 0.0, 1e-12);
  EXPECT_NEAR(LrMultiplier("linear", 50, 100, 0), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(LrMultiplier("constant", 50, 100, 5), 1.0);
}

TEST(ClipGradNorm, ScalesToMaxNormAndReportsTheOriginal) {
  at::Tensor a = at::zeros({2}).requires_grad_(true), b = at::zeros({1}).requires_grad_(true);
  a.mutable_grad() = at::tensor({3.0f, 0.0f});
  b.mutable_grad() = at::tensor({4.0f});
  EXPECT_NEAR(ClipGradNorm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(ClipGradNorm({a, b}, 10.0), 1.0, 1e-5);  // under the limit: unchanged
  EXPECT_NEAR(b.grad()[0].item<double>(), 4.0 / (5.0 + 1e-6), 1e-6);
}

}  // namespace
}  // namespace vlmd
