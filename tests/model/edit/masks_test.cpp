// Unstructured masks: exact global/per-layer counts with ties, the 2:4 pattern per group of four.
#include "model/edit/masks.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/edit/plan.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::edit {
namespace {

model::ViT tiny_model(uint64_t seed) { return testing::initialized_vit("vit-tiny-test", seed); }

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
  TensorMap scores;
  for (auto& [name, lin] : prunable_linears(m)) scores[name] = lin->weight.detach().abs();
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

}  // namespace
}  // namespace vitopt::edit
