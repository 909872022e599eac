// Slimming: the slimmed model computes exactly what the gated (zero-ablated) original computes,
// its file loads back with fewer params/MACs, repeated slimming keeps original head indices, and
// with ablation means folded in it computes what the mean-ablated original computes.
#include "model/edit/slim.h"

#include <gtest/gtest.h>

#include "export/model_writer.h"
#include "io/model_counts.h"
#include "model/edit/ablation.h"
#include "model/model_file.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::edit {
namespace {

model::ViT random_model(uint64_t seed, int depth = 2) {
  return testing::random_vit(testing::tiny_config(depth), seed);
}

TEST(Slim, SameLogitsAsGatedOriginal) {
  auto m = random_model(1, 3);
  StructurePlan plan = full_plan(m->config());
  plan[0].heads = {1};              // one head of two
  plan[0].neurons = {0, 5, 9, 63};  // 4 of 64 neurons
  plan[1].attn = false;             // whole attention branch removed
  plan[1].neurons = {2, 3, 4};
  plan[2].heads = {0, 1};
  plan[2].mlp = false;  // whole MLP branch removed
  auto s = slim(m, plan);
  const auto& c = s->config();
  EXPECT_EQ(c.block_heads(0), 1);
  EXPECT_EQ(c.blocks[0].kept_heads, std::vector<int>({1}));
  EXPECT_EQ(c.block_mlp(0), 4);
  EXPECT_TRUE(c.blocks[1].skip_attn);
  EXPECT_EQ(c.block_mlp(1), 3);
  EXPECT_TRUE(c.blocks[2].skip_mlp);
  EXPECT_LT(io::count_macs(c), io::count_macs(m->config()));
  EXPECT_EQ(io::count_params(c), [&] {
    int64_t n = 0;
    for (auto& p : s->parameters()) n += p.numel();
    return n;
  }());

  torch::NoGradGuard no_grad;
  auto x = testing::random_images(m->config(), 5, 2);
  model::Trace gated;
  plan_gates(plan, m->config(), gated);
  auto want = m->forward(x, &gated);
  auto got = s->forward(x);
  EXPECT_LT((want - got).abs().max().item<float>(), 1e-5f);
  // And the pruning really changed the function (the test would be empty otherwise).
  EXPECT_GT((m->forward(x) - got).abs().max().item<float>(), 1e-3f);

  // An ordinary model file: loads back with the same structure and logits.
  testing::TempDir tmp;
  exporter::save_model(s, tmp / "slim.safetensors");
  auto loaded = model::load_model(tmp / "slim.safetensors");
  loaded->eval();
  EXPECT_EQ(loaded->config().to_json(), c.to_json());
  EXPECT_TRUE(torch::equal(loaded->forward(x), got));
}

TEST(Slim, RepeatedSlimmingKeepsOriginalHeadIndices) {
  auto m = random_model(3);
  StructurePlan p1 = full_plan(m->config());
  p1[0].heads = {1};
  auto s1 = slim(m, p1);
  StructurePlan p2 = full_plan(s1->config());
  p2[1].heads = {1};
  auto s2 = slim(s1, p2);
  EXPECT_EQ(s2->config().blocks[0].kept_heads, std::vector<int>({1}));
  EXPECT_EQ(s2->config().blocks[1].kept_heads, std::vector<int>({1}));
  // No block is ever left with zero heads: an empty plan removes the branch instead.
  StructurePlan p3 = full_plan(s2->config());
  p3[0].heads.clear();
  auto s3 = slim(s2, p3);
  EXPECT_TRUE(s3->config().blocks[0].skip_attn);
}

TEST(Slim, MeanAblationFoldingIsExact) {
  auto m = random_model(9, 3);
  const auto& c0 = m->config();
  std::vector<torch::Tensor> batches{testing::random_images(c0, 6, 20),
                                     testing::random_images(c0, 5, 21)};
  const auto means = measure_means(m, batches);
  // The means are what they claim to be: head 1 of block 0 over images and tokens.
  {
    torch::NoGradGuard no_grad;
    model::Trace t;
    t.record_heads = true;
    t.record_mlp = true;
    m->forward(torch::cat(batches, 0), &t);
    EXPECT_LT(
        (t.head_out[0].mean(std::vector<int64_t>{0, 1}) - means.heads[0]).abs().max().item<float>(),
        1e-5f);
    EXPECT_LT((t.mlp_act[2].mean(std::vector<int64_t>{0, 1}) - means.neurons[2])
                  .abs()
                  .max()
                  .item<float>(),
              1e-5f);
  }
  StructurePlan plan = full_plan(c0);
  plan[0].heads = {1};              // head 0 mean-ablated into proj's bias
  plan[0].neurons = {0, 5, 9, 63};  // 60 neurons into fc2's bias
  plan[1].attn = false;             // block 1 attention into block 0's fc2 bias
  plan[1].mlp = false;              // block 1 MLP too (same writer)
  plan[2].heads.clear();            // no head left: branch mean, into block 0's fc2 bias
  plan[2].neurons = {7};
  auto s = slim(m, plan, &means);
  // Block 0's attention removed entirely: its mean goes to the position embedding.
  StructurePlan first = full_plan(c0);
  first[0].attn = false;
  auto s0 = slim(m, first, &means);

  torch::NoGradGuard no_grad;
  auto x = testing::random_images(c0, 4, 22);  // images the means were not measured on
  for (auto* pair : {&plan, &first}) {
    model::Trace ablated;
    plan_gates(*pair, c0, ablated);
    set_ablation_means(ablated, means);
    const auto want = m->forward(x, &ablated);
    const auto got = (pair == &plan ? s : s0)->forward(x);
    EXPECT_LT((want - got).abs().max().item<float>(), 1e-5f);
    // Mean ablation is not zero ablation: the folded constants matter.
    model::Trace zeroed;
    plan_gates(*pair, c0, zeroed);
    EXPECT_GT((m->forward(x, &zeroed) - got).abs().max().item<float>(), 1e-3f);
  }
}

}  // namespace
}  // namespace vitopt::edit
