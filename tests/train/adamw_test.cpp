// AdamW against LibTorch's own torch::optim::AdamW (an independent implementation) and the
// warm-up/cosine schedule against hand-computed values.
#include "train/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace vitopt::train {
namespace {

TEST(AdamW, MatchesTorchOptimAdamW) {
  torch::manual_seed(3);
  auto w_ours = torch::randn({5, 7}).requires_grad_(true);
  auto b_ours = torch::randn({5}).requires_grad_(true);
  auto w_ref = w_ours.detach().clone().requires_grad_(true);
  auto b_ref = b_ours.detach().clone().requires_grad_(true);
  auto x = torch::randn({11, 7});
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  AdamW ours({{"blocks.0.mlp.fc1.weight", w_ours}, {"blocks.0.mlp.fc1.bias", b_ours}}, o);
  // Reference: decay on the weight only, as ours does for 1-D tensors.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w_ref},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(0.01).weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{b_ref},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(0.01).weight_decay(0.0)));
  torch::optim::AdamW ref(groups, torch::optim::AdamWOptions(0.01));
  for (int step = 0; step < 20; ++step) {
    ours.zero_grad();
    ref.zero_grad();
    (torch::tanh(torch::mm(x, w_ours.t()) + b_ours)).pow(2).sum().backward();
    (torch::tanh(torch::mm(x, w_ref.t()) + b_ref)).pow(2).sum().backward();
    ours.step();
    ref.step();
  }
  EXPECT_LT((w_ours - w_ref).abs().max().item<double>(), 1e-6);
  EXPECT_LT((b_ours - b_ref).abs().max().item<double>(), 1e-6);
  EXPECT_EQ(ours.step_count(), 20);
}

TEST(AdamW, NoDecayOnNormsBiasesTokensAndPosEmbed) {
  EXPECT_TRUE(is_no_decay("blocks.0.norm1.weight", torch::ones({4})));
  EXPECT_TRUE(is_no_decay("head.bias", torch::ones({4})));
  EXPECT_TRUE(is_no_decay("cls_token", torch::ones({1, 1, 4})));
  EXPECT_TRUE(is_no_decay("pos_embed", torch::ones({1, 5, 4})));
  EXPECT_FALSE(is_no_decay("blocks.0.attn.qkv.weight", torch::ones({12, 4})));
  EXPECT_FALSE(is_no_decay("patch_embed.proj.weight", torch::ones({4, 1, 2, 2})));
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  torch::manual_seed(1);
  auto make = [] { return torch::randn({3, 4}).requires_grad_(true); };
  auto p1 = make();
  auto p2 = p1.detach().clone().requires_grad_(true);
  AdamW a({{"w", p1}}, {}), b({{"w", p2}}, {});
  auto step = [](AdamW& opt, torch::Tensor& p) {
    opt.zero_grad();
    (p * p).sum().backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step(a, p1), step(b, p2);
  // Copy a's state into a fresh optimizer over p2 and continue both.
  AdamW c({{"w", p2}}, {});
  c.load_state(a.state(), a.step_count(), "test");
  for (int i = 0; i < 3; ++i) step(a, p1), step(c, p2);
  EXPECT_TRUE(torch::equal(p1, p2));
}

TEST(AdamW, LoadStateRejectsMismatchedShapes) {
  auto p = torch::zeros({2, 2}).requires_grad_(true);
  AdamW a({{"w", p}}, {});
  std::map<std::string, torch::Tensor> bad = {{"m.w", torch::zeros({3})}, {"v.w", torch::zeros({2, 2})}};
  EXPECT_THROW(a.load_state(bad, 1, "ckpt"), core::InputError);
}

TEST(Schedule, WarmupThenCosine) {
  // 10 warm-up steps to 1.0, then cosine over 90 steps down to 0.1.
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(0, 10, 100, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(9, 10, 100, 1.0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(10, 10, 100, 1.0, 0.1), 1.0);
  EXPECT_NEAR(warmup_cosine_lr(55, 10, 100, 1.0, 0.1), 0.55, 1e-12);  // half way: mean
  EXPECT_NEAR(warmup_cosine_lr(100, 10, 100, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(0, 0, 100, 1.0, 0.0), 1.0, 1e-12);
}

}  // namespace
}  // namespace vitopt::train
