// Factor replacement, weight sharing and copies: truncated-SVD factors at full rank reproduce the
// weight and the model's logits, a lower rank leaves exactly the singular-value tail
// (Eckart-Young), shared blocks hold one tensor that receives the sum of its users' gradients,
// and a copy is deep (masks included).
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/edit/copy.h"
#include "model/edit/factor.h"
#include "model/edit/masks.h"
#include "model/edit/plan.h"
#include "model/edit/share.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::edit {
namespace {

model::ViT random_model(uint64_t seed, int depth = 2) {
  return testing::random_vit(testing::tiny_config(depth), seed);
}

TEST(Factor, TruncationErrorIsTheSingularValueTail) {
  auto gen = at::detail::createCPUGenerator(3);
  const auto w = torch::randn({7, 11}, gen);
  const auto s = torch::linalg::svdvals(w.to(torch::kDouble), c10::nullopt);  // (7)
  for (int64_t r : {1, 3, 7}) {
    const auto [u, v] = low_rank_factors(w, r);
    EXPECT_EQ(u.sizes(), (std::vector<int64_t>{7, r}));
    EXPECT_EQ(v.sizes(), (std::vector<int64_t>{r, 11}));
    const double err = (w.to(torch::kDouble) - u.mm(v).to(torch::kDouble)).norm().item<double>();
    const double tail = s.slice(0, r).pow(2).sum().sqrt().item<double>();
    EXPECT_NEAR(err, tail, 1e-4) << "rank " << r;  // float32 factors
  }
  EXPECT_THROW(low_rank_factors(w, 0), core::InputError);
  EXPECT_THROW(low_rank_factors(w, 8), core::InputError);
}

TEST(Factor, FullRankReplacementIsExact) {
  auto m = random_model(4);
  const auto& c = m->config();
  std::vector<BlockRanks> ranks(c.depth);
  const int C = c.embed_dim, M = c.mlp_dim, A = c.num_heads * c.head_dim;
  ranks[0] = {std::min(C, 3 * A), std::min(A, C), std::min(C, M), std::min(M, C)};
  ranks[1].fc1 = std::min(C, M);
  auto f = factorize(m, ranks);
  EXPECT_EQ(f->config().blocks[0].qkv_rank, ranks[0].qkv);
  EXPECT_EQ(f->block(0).attn->qkv->rank, ranks[0].qkv);
  EXPECT_FALSE(f->block(0).attn->qkv->weight.defined());
  EXPECT_EQ(f->block(1).attn->qkv->rank, 0);
  torch::NoGradGuard no_grad;
  const auto x = testing::random_images(c, 3, 5);
  const auto want = m->forward(x);
  EXPECT_LT((f->forward(x) - want).abs().max().item<float>(), 1e-5f);
  // Back to dense: the product of the factors.
  auto d = factorize(f, std::vector<BlockRanks>(c.depth));
  EXPECT_TRUE(d->block(0).attn->qkv->weight.defined());
  EXPECT_LT((d->forward(x) - want).abs().max().item<float>(), 1e-5f);
  // A low rank really changes the function.
  ranks[0].fc1 = 2;
  EXPECT_GT((factorize(m, ranks)->forward(x) - want).abs().max().item<float>(), 1e-3f);
}

TEST(Share, BlocksHoldOneTensorAndSumTheirGradients) {
  auto m = random_model(6, 3);
  auto s = share_blocks(m, {-1, 0, -1}, ShareInit::Owner);
  EXPECT_EQ(s->config().blocks[1].shared_with, 0);
  // One tensor: the same storage, and no parameters under block 1's names.
  EXPECT_EQ(s->block(1).attn->qkv->weight.data_ptr(), s->block(0).attn->qkv->weight.data_ptr());
  for (const auto& item : s->named_parameters())
    EXPECT_NE(item.key().rfind("blocks.1.", 0), 0u) << item.key();
  // Owner init: block 0's weights; block 2 keeps its own.
  EXPECT_TRUE(torch::equal(s->block(0).mlp->fc1->weight, m->block(0).mlp->fc1->weight));
  EXPECT_TRUE(torch::equal(s->block(2).mlp->fc1->weight, m->block(2).mlp->fc1->weight));
  // Gradients: the shared tensor gets the sum of what two unshared copies would get.
  auto twin = random_model(6, 3);
  {
    torch::NoGradGuard no_grad;
    for (const auto& item : twin->named_parameters()) {
      auto key = item.key();
      if (key.rfind("blocks.1.", 0) == 0) key.replace(0, 9, "blocks.0.");
      item.value().copy_(s->named_parameters()[key]);
    }
  }
  const auto x = testing::random_images(m->config(), 2, 7);
  s->forward(x).pow(2).sum().backward();
  twin->forward(x).pow(2).sum().backward();
  const auto want = twin->block(0).mlp->fc2->weight.grad() + twin->block(1).mlp->fc2->weight.grad();
  EXPECT_LT((s->block(0).mlp->fc2->weight.grad() - want).abs().max().item<float>(), 1e-5f);
  // Mean init: the group's average.
  auto mean = share_blocks(m, {-1, 0, 0}, ShareInit::Mean);
  const auto avg = (m->block(0).attn->proj->weight + m->block(1).attn->proj->weight +
                    m->block(2).attn->proj->weight) /
                   3;
  EXPECT_LT((mean->block(2).attn->proj->weight - avg).abs().max().item<float>(), 1e-6f);
  EXPECT_THROW(share_blocks(m, {-1, 2, -1}, ShareInit::Owner), core::InputError);
  EXPECT_THROW(share_blocks(m, {-1, 0, 1}, ShareInit::Owner), core::InputError);
}

TEST(Copy, IsDeepAndKeepsMasks) {
  auto m = random_model(8);
  TensorMap scores;
  for (auto& [name, lin] : prunable_linears(m)) scores[name] = lin->weight.detach().abs();
  apply_masks(m, masks_per_layer(scores, 0.5));
  auto c = copy_model(m);
  ASSERT_TRUE(c->block(0).mlp->fc1->mask.defined());
  EXPECT_TRUE(torch::equal(c->block(0).mlp->fc1->mask, m->block(0).mlp->fc1->mask));
  EXPECT_NE(c->block(0).mlp->fc1->weight.data_ptr(), m->block(0).mlp->fc1->weight.data_ptr());
  torch::NoGradGuard no_grad;
  const auto x = testing::random_images(m->config(), 2, 9);
  EXPECT_TRUE(torch::equal(c->forward(x), m->forward(x)));
  c->block(0).mlp->fc1->weight.add_(1.0);
  EXPECT_FALSE(torch::equal(c->forward(x), m->forward(x)));
}

}  // namespace
}  // namespace vitopt::edit
