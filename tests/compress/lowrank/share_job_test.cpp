// Weight sharing: group parsing and the grouping search on hand-made distances, block distances
// on a model with a duplicated block, a shared tensor stored once and receiving the sum of its
// users' gradients, and the central-member initialization.
#include "compress/lowrank/share_job.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "io/safetensors.h"
#include "model/edit/copy.h"
#include "model/edit/share.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::lowrank {
namespace {

TEST(Share, ParsesGroups) {
  EXPECT_EQ(parse_groups("0-1,2-3,4-5", 6),
            (std::vector<std::vector<int>>{{0, 1}, {2, 3}, {4, 5}}));
  EXPECT_EQ(parse_groups("1-3", 6), (std::vector<std::vector<int>>{{1, 2, 3}}));
  EXPECT_EQ(parse_groups("2", 6), (std::vector<std::vector<int>>{{2}}));
  for (const char* bad : {"0-6", "3-1", "0-1,1-2", "a-b", "", "0-1,", "-1-2"})
    EXPECT_THROW(parse_groups(bad, 6), core::InputError) << bad;
}

TEST(Share, GroupingFollowsTheDistances) {
  // Blocks 0-2 alike, 3-5 alike, the two sets far apart: two groups split at 3, and the centre
  // of {0, 1, 2} is 1 (closest to both others).
  std::vector<std::vector<double>> d(6, std::vector<double>(6, 1.5));
  for (int i = 0; i < 6; ++i) d[i][i] = 0;
  auto near = [&](int i, int j, double v) { d[i][j] = d[j][i] = v; };
  near(0, 1, 0.1), near(1, 2, 0.1), near(0, 2, 0.3);
  near(3, 4, 0.1), near(4, 5, 0.2), near(3, 5, 0.25);
  const auto g = best_grouping(d, 2);
  EXPECT_EQ(g.groups, (std::vector<std::vector<int>>{{0, 1, 2}, {3, 4, 5}}));
  EXPECT_EQ(g.centres, (std::vector<int>{1, 4}));
  EXPECT_EQ(best_grouping(d, 6).groups.size(), 6u);
  EXPECT_THROW(best_grouping(d, 7), core::InputError);
}

TEST(Share, DuplicatedBlocksHaveZeroDistance) {
  auto c = testing::tiny_config(3, 2);
  auto m = testing::random_vit(c, 2, 0.1);
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  for (auto& p : m->named_parameters())  // block 1 := block 0
    if (p.key().rfind("blocks.1.", 0) == 0)
      p.value().copy_(params["blocks.0." + p.key().substr(9)]);
  const auto d = block_distances(m, {testing::random_images(c, 4, 3)});
  EXPECT_NEAR(d[0][1], 0.0, 1e-6);
  EXPECT_GT(d[0][2], 0.1);
  EXPECT_DOUBLE_EQ(d[1][2], d[2][1]);
}

TEST(Share, SharedTensorStoredOnceAndGradientsSum) {
  testing::TempDir tmp;
  auto c = testing::tiny_config(2, 2);
  auto m = testing::random_vit(c, 4, 0.1);
  edit::ShareSpec spec;
  spec.groups = {{{0, 1}, 0}};
  auto shared = edit::share_blocks(m, spec);
  exporter::save_model(shared, tmp / "s.safetensors");
  const auto file = io::SafeTensorsFile::load(tmp / "s.safetensors");
  // Block 1 stores its LayerNorms and biases only: the weight matrices are block 0's.
  auto is_matrix = [](const std::string& name) {
    return name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 &&
           name.find("norm") == std::string::npos;
  };
  int block1 = 0;
  for (const auto& name : file.names()) {
    if (name.rfind("blocks.1.", 0) != 0) continue;
    EXPECT_FALSE(is_matrix(name)) << name;
    ++block1;
  }
  EXPECT_EQ(block1, 8);
  EXPECT_LT(std::filesystem::file_size(tmp / "s.safetensors"),
            static_cast<uintmax_t>(4 * io::count_params(m->config())));
  // An unshared model whose block 1 multiplies by block 0's weight matrices: the shared
  // parameter's gradient is the sum of the two copies' gradients.
  auto twin = edit::copy_model(m);
  {
    torch::NoGradGuard no_grad;
    auto p = shared->named_parameters();
    for (auto& q : twin->named_parameters()) {
      const bool moved = q.key().rfind("blocks.1.", 0) == 0 && is_matrix(q.key());
      q.value().copy_(p[moved ? "blocks.0." + q.key().substr(9) : q.key()]);
    }
  }
  const auto x = testing::random_images(c, 3, 5);
  shared->forward(x).pow(2).sum().backward();
  twin->forward(x).pow(2).sum().backward();
  auto sp = shared->named_parameters();
  auto tp = twin->named_parameters();
  for (const char* leaf : {"attn.qkv.weight", "mlp.fc1.weight"}) {
    const auto expected =
        tp[std::string("blocks.0.") + leaf].grad() + tp[std::string("blocks.1.") + leaf].grad();
    const auto got = sp[std::string("blocks.0.") + leaf].grad();
    EXPECT_LT((got - expected).abs().max().item<double>(),
              1e-5 * (1 + expected.abs().max().item<double>()))
        << leaf;
  }
}

TEST(Share, CentralInitTakesTheCentreWeights) {
  auto c = testing::tiny_config(3, 2);
  auto m = testing::random_vit(c, 6, 0.1);
  {
    torch::NoGradGuard no_grad;  // block 1 halfway between 0 and 2: the centre of the group
    auto p = m->named_parameters();
    for (auto& q : m->named_parameters())
      if (q.key().rfind("blocks.1.", 0) == 0) {
        const auto rest = q.key().substr(9);
        q.value().copy_((p["blocks.0." + rest] + p["blocks.2." + rest]) / 2);
      }
  }
  ShareRequest r;
  r.groups = "0-2";
  r.init = "central";
  r.data = "synthetic";
  r.calib_images = 16;
  r.out = "unused.safetensors";
  nlohmann::json log;
  auto s = share_model(m, r, log);
  EXPECT_EQ(log["groups"][0]["initialized_from"].get<int>(), 1);
  const auto& cs = s->config();
  EXPECT_EQ(cs.blocks[1].attn_shared_with, 0);
  EXPECT_EQ(cs.blocks[2].mlp_shared_with, 0);
  EXPECT_TRUE(torch::equal(s->block(0).attn->qkv->weight, m->block(1).attn->qkv->weight));
  // The owner keeps its own LayerNorm: the centre gives weight matrices only.
  EXPECT_TRUE(torch::equal(s->block(0).norm1->weight, m->block(0).norm1->weight));
  // The MLP alone, with deltas.
  auto mlp = r;
  mlp.what = {"mlp"};
  mlp.delta_rank = 4;
  auto sm = share_model(m, mlp, log);
  EXPECT_EQ(sm->config().blocks[2].attn_shared_with, -1);
  EXPECT_EQ(sm->config().blocks[2].mlp_shared_with, 0);
  EXPECT_EQ(sm->config().blocks[2].delta_rank, 4);
  EXPECT_EQ(log["delta_rank"].get<int>(), 4);
  auto bad = r;
  bad.what = {"ffn"};
  EXPECT_THROW(share_model(m, bad, log), core::InputError);
  bad = r;
  bad.delta_rank = -1;
  EXPECT_THROW(share_model(m, bad, log), core::InputError);
  EXPECT_THROW(share_model(s, r, log), core::InputError);  // already shared
}

}  // namespace
}  // namespace vitopt::lowrank
