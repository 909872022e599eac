// The pruning job: the cubic schedule, masks that survive fine-tuning, ranking policies, and bad
// requests.
#include "compress/prune/prune_job.h"

#include <gtest/gtest.h>

#include "compress/prune/policy.h"
#include "core/error.h"
#include "model/edit/masks.h"
#include "model/edit/share.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::prune {
namespace {

model::ViT tiny_model(uint64_t seed) { return testing::initialized_vit("vit-tiny-test", seed); }

TEST(Masks, CubicSchedule) {
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.8, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.8, 1, 4), 0.8 * (1 - 0.421875));
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.8, 2, 4), 0.7);
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.8, 3, 4), 0.8 * (1 - 1.0 / 64));
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.8, 4, 4), 0.8);
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.5, 1, 1), 0.5);
}

TEST(Masks, PersistThroughFineTuning) {
  testing::TempDir tmp;
  auto dense = tiny_model(5);
  PruneRequest r;
  r.methods = {"global"};
  r.amount = 0.5;
  r.steps = 2;                 // 0.4375 at the start, 0.5 half-way through
  r.finetune_epochs = 0.125;   // 128 synthetic images: 8 steps of 16
  r.finetune.batch_size = 16;
  r.finetune.lr = 1e-2;
  r.data = "synthetic";
  r.out = tmp / "p.safetensors";
  r.report_dir = tmp.path();
  r.quiet = true;
  nlohmann::json log;
  auto p = prune_model(dense, r, r.amount, log);
  ASSERT_EQ(log["steps"].size(), 2u);
  EXPECT_EQ(log["finetune"].size(), 1u);
  const auto st = edit::sparsity_stats(p);
  EXPECT_EQ(st["zeros"].get<int64_t>(), std::llround(0.5 * st["total"].get<double>()));
  // Training really moved the kept weights, and every masked weight is still exactly zero.
  torch::NoGradGuard no_grad;
  auto& pl = *p->block(0).mlp->fc1;
  auto& dl = *dense->block(0).mlp->fc1;
  ASSERT_TRUE(pl.mask.defined());
  EXPECT_TRUE(pl.weight.masked_select(pl.mask.eq(0)).eq(0).all().item<bool>());
  EXPECT_GT((pl.weight - dl.weight).masked_select(pl.mask.eq(1)).abs().max().item<float>(), 1e-4f);
}

// A model sharing weights between blocks is refused by every pruning method, naming the block.
TEST(PruneJob, SharedBlocksAreRefused) {
  auto dense = tiny_model(5);
  edit::ShareSpec spec;
  spec.groups = {{{0, 1}, 0}};
  spec.mlp = false;
  auto shared = edit::share_blocks(dense, spec);
  for (const char* method : {"global", "nm", "heads"}) {
    PruneRequest r;
    r.methods = {method};
    r.model = "shared.safetensors";
    r.data = "synthetic";
    r.quiet = true;
    nlohmann::json log;
    try {
      (void)prune_model(shared, r, 0.5, log);
      ADD_FAILURE() << method << ": pruned a shared model";
    } catch (const core::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("block 1 shares"), std::string::npos) << e.what();
    }
  }
}

TEST(Policy, GlobalNeverEmptiesABlock) {
  std::vector<torch::Tensor> s{torch::tensor({0.1f, 0.2f}), torch::Tensor(),
                               torch::tensor({5.f, 0.15f, 6.f})};
  auto keep = keep_global(s, 3);
  EXPECT_EQ(keep[0], std::vector<int>({1}));  // 0.1 goes, 0.2 is block 0's last
  EXPECT_TRUE(keep[1].empty());
  EXPECT_EQ(keep[2], std::vector<int>({2}));  // 0.15 and 5 go instead
  auto per = keep_per_layer(s, {1, 0, 5});
  EXPECT_EQ(per[0], std::vector<int>({1}));
  EXPECT_EQ(per[2], std::vector<int>({2}));  // capped at size - 1
  auto sub = keep_subblocks({1.0, std::nan(""), 0.5, 2.0}, 10);
  EXPECT_EQ(sub, std::vector<bool>({false, false, false, true}));
}

TEST(PruneJob, BadRequestsAreInputErrors) {
  PruneRequest r;
  r.out = "x.safetensors";
  r.methods = {"heads"};
  EXPECT_NO_THROW(validate_request(r));
  auto bad = [&](auto edit) {
    PruneRequest b = r;
    edit(b);
    EXPECT_THROW(validate_request(b), core::InputError);
  };
  bad([](PruneRequest& b) { b.amount = 1.0; });
  bad([](PruneRequest& b) { b.amount = -0.1; });
  bad([](PruneRequest& b) { b.methods = {"random"}; });
  bad([](PruneRequest& b) { b.methods = {"global", "heads"}; });
  bad([](PruneRequest& b) { b.methods = {"nm"}, b.nm = "5:4"; });
  bad([](PruneRequest& b) { b.methods = {"nm"}, b.nm = "2-4"; });
  bad([](PruneRequest& b) { b.criterion = "entropy"; });
  bad([](PruneRequest& b) { b.methods = {"blocks"}, b.per_layer = true; });
  bad([](PruneRequest& b) { b.steps = 0; });
  bad([](PruneRequest& b) { b.sweep = {0.2, 1.5}; });
}

}  // namespace
}  // namespace vitopt::prune
