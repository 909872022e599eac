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

// The Linears' weight matrices of a shared branch, by name under the block.
bool is_linear_weight(const std::string& key) {
  const std::string leaf = key.substr(key.rfind('.') + 1);
  return key.find("norm") == std::string::npos &&
         (leaf == "weight" || leaf == "weight_u" || leaf == "weight_v");
}

TEST(Share, BranchesHoldOneTensorAndSumTheirGradients) {
  auto m = random_model(6, 3);
  ShareSpec spec;
  spec.groups = {{{0, 1}, 0}};  // blocks 0-1, the owner's weights
  auto s = share_blocks(m, spec);
  EXPECT_EQ(s->config().blocks[1].attn_shared_with, 0);
  EXPECT_EQ(s->config().blocks[1].mlp_shared_with, 0);
  // One tensor: the same storage; block 1 keeps only its LayerNorms and biases.
  EXPECT_EQ(s->block(1).attn->qkv->weight.data_ptr(), s->block(0).attn->qkv->weight.data_ptr());
  int own = 0;
  for (const auto& item : s->named_parameters()) {
    if (item.key().rfind("blocks.1.", 0) != 0) continue;
    EXPECT_FALSE(is_linear_weight(item.key())) << item.key();
    ++own;
  }
  EXPECT_EQ(own, 4 + 4);  // norm1, norm2 (weight, bias); qkv, proj, fc1, fc2 biases
  // Owner init: block 0's weights; block 1 keeps its own norms and biases; block 2 its weights.
  EXPECT_TRUE(torch::equal(s->block(0).mlp->fc1->weight, m->block(0).mlp->fc1->weight));
  EXPECT_TRUE(torch::equal(s->block(1).norm1->weight, m->block(1).norm1->weight));
  EXPECT_TRUE(torch::equal(s->block(1).mlp->fc2->bias, m->block(1).mlp->fc2->bias));
  EXPECT_TRUE(torch::equal(s->block(2).mlp->fc1->weight, m->block(2).mlp->fc1->weight));
  // Gradients: the shared tensor gets the sum of what two unshared copies would get.
  auto twin = random_model(6, 3);
  {
    torch::NoGradGuard no_grad;
    auto sp = s->named_parameters();
    for (const auto& item : twin->named_parameters()) {
      auto key = item.key();
      if (key.rfind("blocks.1.", 0) == 0 && is_linear_weight(key)) key.replace(0, 9, "blocks.0.");
      item.value().copy_(sp[key]);
    }
  }
  const auto x = testing::random_images(m->config(), 2, 7);
  s->forward(x).pow(2).sum().backward();
  twin->forward(x).pow(2).sum().backward();
  const auto want = twin->block(0).mlp->fc2->weight.grad() + twin->block(1).mlp->fc2->weight.grad();
  EXPECT_LT((s->block(0).mlp->fc2->weight.grad() - want).abs().max().item<float>(), 1e-5f);
  EXPECT_LT((s->block(1).norm2->bias.grad() - twin->block(1).norm2->bias.grad())
                .abs()
                .max()
                .item<float>(),
            1e-5f);
  // Mean init: the group's average.
  spec.groups = {{{0, 1, 2}, -1}};
  auto mean = share_blocks(m, spec);
  const auto avg = (m->block(0).attn->proj->weight + m->block(1).attn->proj->weight +
                    m->block(2).attn->proj->weight) /
                   3;
  EXPECT_LT((mean->block(2).attn->proj->weight - avg).abs().max().item<float>(), 1e-6f);
  // The attention alone: the MLP weights stay each block's own.
  spec.groups = {{{1, 2}, 2}};
  spec.mlp = false;
  auto attn_only = share_blocks(m, spec);
  EXPECT_EQ(attn_only->config().blocks[2].mlp_shared_with, -1);
  EXPECT_TRUE(torch::equal(attn_only->block(1).attn->qkv->weight, m->block(2).attn->qkv->weight));
  EXPECT_TRUE(torch::equal(attn_only->block(1).mlp->fc1->weight, m->block(1).mlp->fc1->weight));
  spec.groups = {{{2, 1}, -1}};
  EXPECT_THROW(share_blocks(m, spec), core::InputError);  // the owner must come first
  spec.groups = {{{0, 1}, 0}, {{1, 2}, 1}};
  EXPECT_THROW(share_blocks(m, spec), core::InputError);             // block 1 in two groups
  EXPECT_THROW(share_blocks(s, {{{{0, 2}, 0}}}), core::InputError);  // already shared
}

// A member's delta starts as the best rank-r approximation of its weight minus the group's, so
// what it still misses is the tail of that difference's spectrum (Eckart-Young).
TEST(Share, DeltaStartsAtTheTruncatedSvdOfTheDifference) {
  auto m = random_model(8, 2);
  ShareSpec spec;
  spec.groups = {{{0, 1}, 0}};
  spec.delta_rank = 4;
  auto s = share_blocks(m, spec);
  EXPECT_EQ(s->config().blocks[1].delta_rank, 4);
  torch::NoGradGuard no_grad;
  for (auto* pick : {+[](model::BlockImpl& b) { return b.attn->qkv.get(); },
                     +[](model::BlockImpl& b) { return b.mlp->fc2.get(); }}) {
    const auto diff = plain_weight(*pick(m->block(1))) - plain_weight(*pick(m->block(0)));
    const auto sv = torch::linalg_svdvals(diff.to(torch::kDouble));  // descending
    const double tail = sv.slice(0, 4).square().sum().item<double>();
    const auto got = plain_weight(*pick(s->block(1)));  // W_0 + delta_u delta_v
    const double err =
        (plain_weight(*pick(m->block(1))) - got).to(torch::kDouble).square().sum().item<double>();
    EXPECT_NEAR(err, tail, 1e-4 * (1 + tail));
    EXPECT_GT(err, 0.0);  // rank 4 of a full-rank difference is not exact
  }
  // The forward pass runs what plain_weight says: the same model with block 1 unshared.
  auto unshared = rebuild(s, m->config());
  const auto x = testing::random_images(m->config(), 2, 3);
  EXPECT_LT((unshared->forward(x) - s->forward(x)).abs().max().item<float>(), 1e-5f);
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
