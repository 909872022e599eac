// Unstructured pruning: exact global/per-layer counts with ties, the 2:4 pattern per group of
// four, the cubic schedule, masks that survive fine-tuning, ranking policies, and bad requests.
#include <gtest/gtest.h>

#include "compress/prune/masks.h"
#include "compress/prune/policy.h"
#include "compress/prune/prune_job.h"
#include "core/error.h"
#include "io/presets.h"
#include "test_util.h"

namespace vitopt::prune {
namespace {

model::ViT tiny_model(uint64_t seed) {
  model::ViT m(io::preset("vit-tiny-test"));
  m->init_weights(seed);
  m->eval();
  return m;
}

TEST(Masks, GlobalHitsSparsityExactlyWithTies) {
  auto gen = at::detail::createCPUGenerator(11);
  // Scores with massive ties (4 distinct values) in three layers of awkward sizes.
  TensorMap scores{{"a", torch::randint(0, 4, {7, 13}, gen).to(torch::kFloat)},
                   {"b", torch::randint(0, 4, {3, 17}, gen).to(torch::kFloat)},
                   {"c", torch::randint(0, 4, {1, 33}, gen).to(torch::kFloat)}};
  const int64_t n = 7 * 13 + 3 * 17 + 33;
  for (double s : {0.0, 0.1, 0.37, 0.5, 0.9}) {
    auto masks = masks_global(scores, s);
    int64_t zeros = 0;
    float max_pruned = -1, min_kept = 1e9;
    for (const auto& [name, mk] : masks) {
      zeros += mk.eq(0).sum().item<int64_t>();
      const auto& sc = scores.at(name);
      if (mk.eq(0).any().item<bool>())
        max_pruned = std::max(max_pruned, sc.masked_select(mk.eq(0)).max().item<float>());
      if (mk.eq(1).any().item<bool>())
        min_kept = std::min(min_kept, sc.masked_select(mk.eq(1)).min().item<float>());
    }
    EXPECT_EQ(zeros, std::llround(s * n)) << s;
    if (zeros > 0) {
      EXPECT_LE(max_pruned, min_kept) << s;  // one threshold across layers
    }
  }
  auto per = masks_per_layer(scores, 0.5);
  EXPECT_EQ(per["a"].eq(0).sum().item<int64_t>(), std::llround(0.5 * 91));
  EXPECT_EQ(per["c"].eq(0).sum().item<int64_t>(), std::llround(0.5 * 33));
}

TEST(Masks, TwoFourPatternPerGroupOfFour) {
  auto m = tiny_model(3);
  auto scores = magnitude_scores(m);
  apply_masks(m, masks_nm(scores, 2, 4));
  torch::NoGradGuard no_grad;
  for (auto& [name, s] : scores) {
    auto& blk = m->block(name[7] - '0');
    model::LinearImpl* lin = name.find("qkv") != std::string::npos    ? blk.attn->qkv.get()
                             : name.find("proj") != std::string::npos ? blk.attn->proj.get()
                             : name.find("fc1") != std::string::npos  ? blk.mlp->fc1.get()
                                                                      : blk.mlp->fc2.get();
    auto w = lin->weight.reshape({lin->out_features, -1, 4});  // (out, in/4, 4)
    auto sc = s.reshape({lin->out_features, -1, 4});
    EXPECT_TRUE(w.ne(0).sum(2).eq(2).all().item<bool>()) << name;
    // The two kept are the two largest |w| of their group.
    auto kept_min = sc.masked_fill(w.eq(0), 1e9).amin(2);
    auto pruned_max = sc.masked_fill(w.ne(0), -1).amax(2);
    EXPECT_TRUE(kept_min.ge(pruned_max).all().item<bool>()) << name;
  }
  EXPECT_THROW(masks_nm({{"x", torch::ones({2, 6})}}, 2, 4), core::InputError);
}

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
  const auto st = sparsity_stats(p);
  EXPECT_EQ(st["zeros"].get<int64_t>(), std::llround(0.5 * st["total"].get<double>()));
  // Training really moved the kept weights, and every masked weight is still exactly zero.
  torch::NoGradGuard no_grad;
  auto& pl = *p->block(0).mlp->fc1;
  auto& dl = *dense->block(0).mlp->fc1;
  ASSERT_TRUE(pl.mask.defined());
  EXPECT_TRUE(pl.weight.masked_select(pl.mask.eq(0)).eq(0).all().item<bool>());
  EXPECT_GT((pl.weight - dl.weight).masked_select(pl.mask.eq(1)).abs().max().item<float>(), 1e-4f);
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
