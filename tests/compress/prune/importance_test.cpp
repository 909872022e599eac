// Importance criteria and the structured job: head/neuron L2 scores match a naive loop, Taylor
// scores match finite differences, measured-loss scores match full forwards, the registry refuses
// unknown names and misuse, and the structured job on a tiny model keeps one head/neuron a block.
#include "compress/prune/importance.h"

#include <gtest/gtest.h>

#include "compress/prune/prune_job.h"
#include "core/error.h"
#include "io/model_counts.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::prune {
namespace {

model::ViT random_model(uint64_t seed, int depth = 2) {
  return testing::random_vit(testing::tiny_config(depth), seed);
}

std::vector<CalibBatch> random_calib(const io::ViTConfig& c, int batches) {
  std::vector<CalibBatch> out;
  for (int i = 0; i < batches; ++i)
    out.push_back({testing::random_images(c, 8, 100 + i), torch::randint(0, c.num_classes, {8})});
  return out;
}

TEST(Importance, HeadAndNeuronL2MatchNaiveLoops) {
  auto m = random_model(4);
  const auto& c = m->config();
  const int H = c.num_heads, D = c.head_dim, C = c.embed_dim, M = c.mlp_dim;
  for (int b = 0; b < c.depth; ++b) {
    auto& blk = m->block(b);
    auto wq = blk.attn->qkv->weight.accessor<float, 2>();
    auto bq = blk.attn->qkv->bias.accessor<float, 1>();
    auto wp = blk.attn->proj->weight.accessor<float, 2>();
    auto scores = group_scores(m, "l2", {true, true, true}, {});
    auto got = scores.heads[b];
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
    auto gn = scores.neurons[b];
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
  auto s = group_scores(m, "taylor", {true, true, true}, calib);
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
  auto s = group_scores(m, "loss", {true, false, true}, calib);
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

TEST(Importance, RegistryKnowsEachCriterionAndRefusesMisuse) {
  EXPECT_EQ(importance_names(), std::vector<std::string>({"l2", "taylor", "loss"}));
  EXPECT_THROW(make_importance("entropy"), core::InputError);
  auto m = random_model(8);
  EXPECT_THROW(weight_scores(m, "loss", {}), core::InputError);  // groups only
  // Magnitude is L2 on single weights: |w|.
  const auto w = weight_scores(m, "l2", {});
  EXPECT_TRUE(torch::equal(w.at("blocks.1.mlp.fc2"), m->block(1).mlp->fc2->weight.abs()));
  // Taylor on single weights: |w * dL/dw| summed over batches.
  const auto calib = random_calib(m->config(), 1);
  const auto t = weight_scores(m, "taylor", calib);
  m->zero_grad();
  torch::nn::functional::cross_entropy(m->forward(calib[0].x), calib[0].y).backward();
  const auto& fc1 = m->block(0).mlp->fc1->weight;
  EXPECT_LT((t.at("blocks.0.mlp.fc1") - (fc1 * fc1.grad()).abs()).abs().max().item<float>(), 1e-6f);
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
