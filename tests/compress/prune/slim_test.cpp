// Structured pruning: the slimmed model computes exactly what the gated original computes, its
// file loads everywhere with fewer params/MACs, head/neuron L2 scores match a naive loop, Taylor
// scores match finite differences, measured-loss scores match full forwards, and the structured
// job on a tiny model keeps at least one head/neuron per block.
#include <gtest/gtest.h>

#include "compress/prune/groups.h"
#include "compress/prune/importance.h"
#include "compress/prune/prune_job.h"
#include "compress/prune/slim.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "test_util.h"

namespace vitopt::prune {
namespace {

model::ViT random_model(uint64_t seed, int depth = 2) {
  auto c = io::preset("vit-tiny-test");
  c.depth = depth;
  c.blocks.clear();
  c.normalize();
  model::ViT m(c);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.copy_(torch::randn(p.sizes(), gen) * 0.2);
  m->eval();
  return m;
}

torch::Tensor random_input(const io::ViTConfig& c, int64_t batch, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn({batch, c.in_channels, c.image_size, c.image_size}, gen);
}

std::vector<CalibBatch> random_calib(const io::ViTConfig& c, int batches) {
  std::vector<CalibBatch> out;
  for (int i = 0; i < batches; ++i)
    out.push_back({random_input(c, 8, 100 + i), torch::randint(0, c.num_classes, {8})});
  return out;
}

TEST(Slim, SameLogitsAsGatedOriginal) {
  auto m = random_model(1, 3);
  StructurePlan plan = full_plan(m->config());
  plan[0].heads = {1};                // one head of two
  plan[0].neurons = {0, 5, 9, 63};    // 4 of 64 neurons
  plan[1].attn = false;               // whole attention branch removed
  plan[1].neurons = {2, 3, 4};
  plan[2].heads = {0, 1};
  plan[2].mlp = false;                // whole MLP branch removed
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
  auto x = random_input(m->config(), 5, 2);
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

TEST(Groups, HeadAndNeuronL2MatchNaiveLoops) {
  auto m = random_model(4);
  const auto& c = m->config();
  const int H = c.num_heads, D = c.head_dim, C = c.embed_dim, M = c.mlp_dim;
  for (int b = 0; b < c.depth; ++b) {
    auto& blk = m->block(b);
    auto wq = blk.attn->qkv->weight.accessor<float, 2>();
    auto bq = blk.attn->qkv->bias.accessor<float, 1>();
    auto wp = blk.attn->proj->weight.accessor<float, 2>();
    auto got = head_l2(m, b);
    for (int h = 0; h < H; ++h) {
      double sq = 0;
      for (int part = 0; part < 3; ++part)
        for (int d = 0; d < D; ++d) {
          const int row = part * H * D + h * D + d;
          for (int k = 0; k < C; ++k) sq += double(wq[row][k]) * wq[row][k];
          sq += double(bq[row]) * bq[row];
        }
      for (int o = 0; o < C; ++o)
        for (int d = 0; d < D; ++d) sq += double(wp[o][h * D + d]) * wp[o][h * D + d];
      EXPECT_NEAR(got[h].item<double>(), std::sqrt(sq), 1e-4) << "block " << b << " head " << h;
    }
    auto w1 = blk.mlp->fc1->weight.accessor<float, 2>();
    auto b1 = blk.mlp->fc1->bias.accessor<float, 1>();
    auto w2 = blk.mlp->fc2->weight.accessor<float, 2>();
    auto gn = neuron_l2(m, b);
    for (int j = 0; j < M; j += 7) {
      double sq = double(b1[j]) * b1[j];
      for (int k = 0; k < C; ++k) sq += double(w1[j][k]) * w1[j][k] + double(w2[k][j]) * w2[k][j];
      EXPECT_NEAR(gn[j].item<double>(), std::sqrt(sq), 1e-4);
    }
  }
}

TEST(Importance, TaylorMatchesFiniteDifferences) {
  auto m = random_model(5);
  const auto& c = m->config();
  auto calib = random_calib(c, 1);  // one batch: |dL/dg| summed over one batch = |dL/dg|
  auto s = group_scores(m, Criterion::Taylor, {true, true, true}, calib);
  auto loss_with = [&](int b, int h, double g) {
    model::Trace t;
    t.head_gates.assign(c.depth, {});
    t.head_gates[b] = torch::ones({c.num_heads});
    t.head_gates[b][h] = g;
    return calibration_loss(m, calib, &t);
  };
  const double eps = 1e-2;
  for (int b = 0; b < c.depth; ++b)
    for (int h = 0; h < c.num_heads; ++h) {
      const double fd = (loss_with(b, h, 1 + eps) - loss_with(b, h, 1 - eps)) / (2 * eps);
      EXPECT_NEAR(s.heads[b][h].item<double>(), std::abs(fd), 2e-3 + 0.02 * std::abs(fd));
    }
  EXPECT_FALSE(std::isnan(s.attn[0]));
  EXPECT_EQ(s.neurons[1].size(0), c.mlp_dim);
}

TEST(Importance, MeasuredLossMatchesFullForward) {
  auto m = random_model(6);
  const auto& c = m->config();
  auto calib = random_calib(c, 2);
  auto s = group_scores(m, Criterion::Loss, {true, false, true}, calib);
  const double base = calibration_loss(m, calib);
  for (int b = 0; b < c.depth; ++b) {
    for (int h = 0; h < c.num_heads; ++h) {
      model::Trace t;
      t.head_gates.assign(c.depth, {});
      t.head_gates[b] = torch::ones({c.num_heads});
      t.head_gates[b][h] = 0.0;
      EXPECT_NEAR(s.heads[b][h].item<double>(), calibration_loss(m, calib, &t) - base, 1e-4);
    }
    model::Trace t;
    t.mlp_gates.assign(c.depth, {});
    t.mlp_gates[b] = torch::zeros({});
    EXPECT_NEAR(s.mlp[b], calibration_loss(m, calib, &t) - base, 1e-4);
  }
}

TEST(PruneJob, StructuredHeadsNeuronsSlimsAndKeepsOnePerBlock) {
  testing::TempDir tmp;
  auto m = random_model(7);
  PruneRequest r;
  r.methods = {"heads", "neurons"};
  r.amount = 0.75;  // 4 heads in total: 3 removed, but never a block's last
  r.data = "synthetic";
  r.out = tmp / "p.safetensors";
  r.report_dir = tmp.path();
  r.quiet = true;
  nlohmann::json log;
  auto p = prune_model(m, r, r.amount, log);
  const auto& c = p->config();
  EXPECT_EQ(c.block_heads(0), 1);
  EXPECT_EQ(c.block_heads(1), 1);
  EXPECT_EQ(c.block_mlp(0) + c.block_mlp(1), 32);  // 128 - round(0.75 * 128)
  EXPECT_LT(io::count_macs(c), io::count_macs(m->config()) * 0.5);
  // Per-layer with the taylor criterion and two cubic steps.
  r.per_layer = true;
  r.criterion = "taylor";
  r.steps = 2;
  r.amount = 0.5;
  r.calib_images = 32;
  nlohmann::json log2;
  auto q = prune_model(m, r, r.amount, log2);
  EXPECT_EQ(q->config().block_mlp(0), 32);
  EXPECT_EQ(q->config().block_mlp(1), 32);
  EXPECT_EQ(q->config().block_heads(0), 1);
  ASSERT_EQ(log2["steps"].size(), 2u);
  EXPECT_NEAR(log2["steps"][0]["target"].get<double>(), 0.4375, 1e-12);  // 0.5 * (1 - 0.5^3)
}

}  // namespace
}  // namespace vitopt::prune
