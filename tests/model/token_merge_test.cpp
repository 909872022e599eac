// Token merging (ToMe) on hand-made tokens: which pairs merge, in what order the tokens come out,
// the size-weighted averages and sizes, the protected class and distillation tokens; and that a
// model with merging computes fewer tokens but a forward r = 0 leaves bit-identical.
#include "model/token_merge.h"

#include <gtest/gtest.h>

#include "io/merge_schedule.h"
#include "model/vit.h"
#include "vit_test_util.h"

namespace vitopt::model {
namespace {

// Seven tokens: t0 = class (A0), B = {t1, t3, t5}, A = {t0, t2, t4, t6}. Similarities (cosine):
// t4 -> t1 0.995, t6 -> t3 0.981, t2 -> t3 0.8 (t2 -> t1 only 0.6).
torch::Tensor metric() {
  return torch::tensor({{1.0f, 0.0f}, {1.0f, 0.0f}, {0.6f, 0.8f}, {0.0f, 1.0f},
                        {1.0f, 0.1f}, {-1.0f, 0.0f}, {0.2f, 1.0f}}).unsqueeze(0);  // (1, 7, 2)
}

torch::Tensor tokens() {  // x_t = (t, 10 t, -t)
  auto t = torch::arange(7, torch::kFloat).unsqueeze(1);
  return torch::cat({t, 10 * t, -t}, 1).unsqueeze(0);  // (1, 7, 3)
}

torch::Tensor row(const torch::Tensor& x, int64_t t) { return x[0][t]; }

TEST(TokenMerge, MostSimilarPairsMergeFirst) {
  const auto m = bipartite_soft_matching(metric(), 2, 1);
  EXPECT_EQ(m.src[0][0].item<int64_t>(), 2);  // A index 2 = t4
  EXPECT_EQ(m.dst[0][0].item<int64_t>(), 0);  // -> B index 0 = t1
  EXPECT_EQ(m.src[0][1].item<int64_t>(), 3);  // t6
  EXPECT_EQ(m.dst[0][1].item<int64_t>(), 1);  // -> t3
  EXPECT_TRUE(torch::equal(m.unmerged, torch::tensor({{0, 1}}, torch::kLong)));  // t0, t2
}

TEST(TokenMerge, SizeWeightedAveragesAndSizes) {
  const auto sizes = torch::tensor({1.0f, 2.0f, 1.0f, 1.0f, 3.0f, 1.0f, 1.0f}).view({1, 7, 1});
  const auto x = tokens();
  const auto m = bipartite_soft_matching(metric(), 2, 1);
  const auto [out, out_sizes] = merge_weighted(m, x, sizes);
  ASSERT_EQ(out.size(1), 5);  // [t0, t2, t1 + t4, t3 + t6, t5]
  EXPECT_TRUE(torch::allclose(row(out, 0), row(x, 0)));
  EXPECT_TRUE(torch::allclose(row(out, 1), row(x, 2)));
  EXPECT_TRUE(torch::allclose(row(out, 2), (2 * row(x, 1) + 3 * row(x, 4)) / 5));
  EXPECT_TRUE(torch::allclose(row(out, 3), (row(x, 3) + row(x, 6)) / 2));
  EXPECT_TRUE(torch::allclose(row(out, 4), row(x, 5)));
  EXPECT_TRUE(torch::equal(out_sizes.view({-1}), torch::tensor({1.0f, 1.0f, 5.0f, 2.0f, 1.0f})));
}

TEST(TokenMerge, ThreeMergesIntoOneTokenAndClassTokenKept) {
  const auto x = tokens();
  const auto m = bipartite_soft_matching(metric(), 3, 1);  // the cap: (7 - 1) / 2
  const auto [out, sizes] = merge_weighted(m, x, {});
  ASSERT_EQ(out.size(1), 4);  // [t0, t1 + t4, t2 + t3 + t6, t5]
  EXPECT_TRUE(torch::allclose(row(out, 0), row(x, 0)));
  EXPECT_TRUE(torch::allclose(row(out, 1), (row(x, 1) + row(x, 4)) / 2));
  EXPECT_TRUE(torch::allclose(row(out, 2), (row(x, 2) + row(x, 3) + row(x, 6)) / 3));
  EXPECT_TRUE(torch::equal(sizes.view({-1}), torch::tensor({1.0f, 2.0f, 3.0f, 1.0f})));
  EXPECT_THROW(bipartite_soft_matching(metric(), 4, 1), std::exception);
}

TEST(TokenMerge, DistillationTokenNeverMergesAndStaysSecond) {
  // t1 is now the distillation token: nothing may merge into it, so t4 falls back to t3 (0.0995).
  const auto x = tokens();
  const auto m = bipartite_soft_matching(metric(), 2, 2);
  const auto [out, sizes] = merge_weighted(m, x, {});
  ASSERT_EQ(out.size(1), 5);  // [cls, dist, t4, t3 + t6 + t2, t5]
  EXPECT_TRUE(torch::allclose(row(out, 0), row(x, 0)));
  EXPECT_TRUE(torch::allclose(row(out, 1), row(x, 1)));
  EXPECT_TRUE(torch::allclose(row(out, 2), row(x, 4)));
  EXPECT_TRUE(torch::allclose(row(out, 3), (row(x, 3) + row(x, 6) + row(x, 2)) / 3));
  EXPECT_TRUE(torch::allclose(row(out, 4), row(x, 5)));
}

TEST(TokenMerge, WithoutClassTokenTheFirstTokenMergesToo) {
  // No prefix (timm class_token=False): t0 is an ordinary A token; t0 -> t1 (cosine 1.0) and
  // t4 -> t1 (0.995) merge first, both into t1.
  const auto x = tokens();
  const auto m = bipartite_soft_matching(metric(), 2, 0);
  const auto [out, sizes] = merge_weighted(m, x, {});
  ASSERT_EQ(out.size(1), 5);  // [t2, t6, t1 + t0 + t4, t3, t5]
  EXPECT_TRUE(torch::allclose(row(out, 0), row(x, 2)));
  EXPECT_TRUE(torch::allclose(row(out, 1), row(x, 6)));
  EXPECT_TRUE(torch::allclose(row(out, 2), (row(x, 0) + row(x, 1) + row(x, 4)) / 3));
  EXPECT_TRUE(torch::allclose(row(out, 3), row(x, 3)));
  EXPECT_TRUE(torch::equal(sizes.view({-1}), torch::tensor({1.0f, 1.0f, 3.0f, 1.0f, 1.0f})));
}

TEST(TokenMerge, RegisterTokensStayInFrontUnmerged) {
  // Class + 2 registers (t0, t1, t2 protected): only t4 and t6 may merge, only into t3 or t5.
  const auto x = tokens();
  const auto one = bipartite_soft_matching(metric(), 1, 3);
  const auto [out1, sizes1] = merge_weighted(one, x, {});
  ASSERT_EQ(out1.size(1), 6);  // [t0, t1, t2, t4, t3 + t6, t5]: t6 -> t3 (0.981) first
  for (int t = 0; t < 3; ++t) EXPECT_TRUE(torch::allclose(row(out1, t), row(x, t))) << t;
  EXPECT_TRUE(torch::allclose(row(out1, 3), row(x, 4)));
  EXPECT_TRUE(torch::allclose(row(out1, 4), (row(x, 3) + row(x, 6)) / 2));
  EXPECT_TRUE(torch::equal(sizes1.view({-1}), torch::tensor({1.0f, 1.0f, 1.0f, 1.0f, 2.0f, 1.0f})));
  const auto two = bipartite_soft_matching(metric(), 2, 3);  // the cap: (7 - 3) / 2
  const auto [out2, sizes2] = merge_weighted(two, x, {});
  ASSERT_EQ(out2.size(1), 5);  // [t0, t1, t2, t3 + t4 + t6, t5]
  EXPECT_TRUE(torch::allclose(row(out2, 3), (row(x, 3) + row(x, 4) + row(x, 6)) / 3));
  EXPECT_TRUE(torch::allclose(row(out2, 4), row(x, 5)));
  EXPECT_THROW(bipartite_soft_matching(metric(), 3, 3), std::exception);
}

TEST(TokenMerge, GradientsReachEveryMergedToken) {
  auto x = tokens().requires_grad_(true);
  const auto m = bipartite_soft_matching(metric(), 2, 1);
  merge_weighted(m, x, {}).first.sum().backward();
  // Each output token is an average: a token's gradient is 1 / (its group's size).
  const auto want = torch::tensor({1.0f, 0.5f, 1.0f, 0.5f, 0.5f, 1.0f, 0.5f});
  EXPECT_TRUE(torch::allclose(x.grad()[0].select(1, 0), want));
}

TEST(TokenMerge, ModelMergesAndZeroIsBitIdentical) {
  auto c = testing::tiny_config(3, 2);  // 16 patches + cls
  auto vit = testing::parity_vit(c, 5);
  const auto x = testing::random_images(c, 2, 6);
  torch::NoGradGuard no_grad;
  const auto plain = vit->forward(x);
  vit->set_merge({0, 0, 0});
  EXPECT_TRUE(torch::equal(vit->forward(x), plain));
  vit->set_merge({4, 4, 4});
  EXPECT_EQ(vit->config().token_counts(), (std::vector<int>{17, 13, 9, 5}));
  model::Trace t;
  t.record_hidden = true;
  const auto merged = vit->forward(x, &t);
  EXPECT_EQ(t.hidden[3].size(1), 5);
  EXPECT_FALSE(torch::allclose(merged, plain));
  // Merging changes the result but keeps it close: the merged tokens were the most similar.
  EXPECT_LT((merged - plain).abs().max().item<double>(), plain.abs().max().item<double>());
}

}  // namespace
}  // namespace vitopt::model
