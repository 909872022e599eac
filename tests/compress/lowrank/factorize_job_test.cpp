// The factorization job on a small model and synthetic data: budgets are met, rank rules and
// refusals, factors written where the log says, files reload, bad requests refused.
#include "compress/lowrank/factorize_job.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "model/model_file.h"
#include "test_util.h"
#include "vit_test_util.h"

namespace vitopt::lowrank {
namespace {

// dim 64, MLP 128: Linears wide enough for several ranks of 16 to save weights.
io::ViTConfig config64() {
  auto c = testing::tiny_config(2, 2);
  c.embed_dim = 64;
  c.mlp_dim = 128;
  c.head_dim = 0;
  c.blocks.clear();
  c.normalize("factorize test");
  return c;
}

FactorizeRequest request(const testing::TempDir& tmp) {
  FactorizeRequest r;
  r.data = "synthetic";
  r.calib_images = 32;
  r.require_speedup = false;  // timing-independent decisions in tests
  r.measure = false;
  r.quiet = true;
  r.out = tmp / "f.safetensors";
  r.report_dir = tmp.path();
  return r;
}

TEST(Factorize, BudgetIsNeverExceeded) {
  testing::TempDir tmp;
  auto dense = testing::random_vit(config64(), 3, 0.1);
  const int64_t params = io::count_params(dense->config());
  for (const char* budget : {"95%", "85%"}) {
    auto r = request(tmp);
    r.param_budget = budget;
    r.method = "activation-aware";
    nlohmann::json log;
    auto f = factorize_model(dense, r, log);
    const int64_t target = log["param_budget"].get<int64_t>();
    EXPECT_LE(io::count_params(f->config()), target) << budget;
    EXPECT_LT(io::count_params(f->config()), params);
    for (const auto& l : log["layers"])  // every rank a multiple of 16 that saves weights
      if (l["rank"].get<int>() > 0) {
        EXPECT_EQ(l["rank"].get<int>() % 16, 0);
        EXPECT_LT(l["params_after"].get<int64_t>(), l["params_before"].get<int64_t>());
      }
  }
  {
    auto r = request(tmp);
    r.param_budget = "100%";  // already met: nothing to factorize, and the log says so
    nlohmann::json log;
    auto f = factorize_model(dense, r, log);
    EXPECT_EQ(io::count_params(f->config()), params);
    EXPECT_NE(log["note"].get<std::string>().find("already fit"), std::string::npos);
  }
  auto r = request(tmp);
  r.param_budget = "10%";  // far below what rank 16 everywhere reaches
  nlohmann::json log;
  EXPECT_THROW(factorize_model(dense, r, log), core::InputError);
}

TEST(Factorize, EnergyRuleWritesTheLoggedRanksAndFactorsReproduceTheSvd) {
  testing::TempDir tmp;
  auto dense = testing::random_vit(config64(), 4, 0.1);
  auto r = request(tmp);
  r.energy = 0.5;
  r.layers = {"qkv", "fc1"};
  nlohmann::json log;
  auto f = factorize_model(dense, r, log);
  const auto& c = f->config();
  int factored = 0;
  for (const auto& l : log["layers"]) {
    const auto name = l["name"].get<std::string>();
    EXPECT_TRUE(name.find("qkv") != std::string::npos || name.find("fc1") != std::string::npos);
    factored += l["rank"].get<int>() > 0;
  }
  EXPECT_GT(factored, 0);
  for (int b = 0; b < c.depth; ++b) {
    EXPECT_EQ(c.blocks[b].proj_rank, 0);
    EXPECT_EQ(c.blocks[b].fc2_rank, 0);
    if (c.blocks[b].qkv_rank > 0) {
      // Plain SVD factors: U V is the best rank-r approximation, so its error is the tail energy.
      const auto w = dense->block(b).attn->qkv->weight;
      const auto& q = *f->block(b).attn->qkv;
      const auto s = torch::linalg::svdvals(w.to(torch::kDouble), c10::nullopt);
      const double tail = s.slice(0, c.blocks[b].qkv_rank).pow(2).sum().item<double>();
      const double err = (w - q.weight_u.mm(q.weight_v)).pow(2).sum().item<double>();
      EXPECT_NEAR(err, tail, 1e-3 * tail);
    }
  }
  // The file reloads with the same logits.
  exporter::save_model(f, tmp / "e.safetensors");
  auto back = model::load_model(tmp / "e.safetensors");
  const auto x = testing::random_images(c, 2, 9);
  torch::NoGradGuard no_grad;
  EXPECT_LT((back->forward(x) - f->forward(x)).abs().max().item<double>(), 1e-6);
}

TEST(Factorize, RanksThatSaveNothingStayDense) {
  testing::TempDir tmp;
  auto dense = testing::random_vit(config64(), 5, 0.1);
  auto r = request(tmp);
  r.rank_ratio = 1.0;  // full rank: a factor pair is larger than the dense matrix
  nlohmann::json log;
  auto f = factorize_model(dense, r, log);
  for (const auto& l : log["layers"]) {
    EXPECT_EQ(l["rank"].get<int>(), 0);
    EXPECT_NE(l["kept_dense"].get<std::string>().find("saves no parameters"), std::string::npos);
  }
  EXPECT_EQ(io::count_params(f->config()), io::count_params(dense->config()));
}

TEST(Factorize, JobWritesModelAndReport) {
  testing::TempDir tmp;
  auto dense = testing::random_vit(config64(), 6, 0.1);
  exporter::save_model(dense, tmp / "dense.safetensors");
  auto r = request(tmp);
  r.model = tmp / "dense.safetensors";
  r.rank_ratio = 0.25;
  r.finetune_epochs = 0.125;  // 128 synthetic images: a few steps, with the teacher
  r.distill = true;
  r.finetune.batch_size = 8;
  const auto j = run_factorize(r);
  EXPECT_TRUE(std::filesystem::exists(tmp / "factorize.json"));
  auto back = model::load_model(r.out);
  EXPECT_LT(io::count_params(back->config()), io::count_params(dense->config()));
  EXPECT_GT(j["finetune"].size(), 0u);
}

TEST(Factorize, BadRequestsAreRefused) {
  testing::TempDir tmp;
  auto base = request(tmp);
  auto expect_bad = [&](auto edit, const std::string& needle) {
    auto r = base;
    edit(r);
    try {
      validate_request(r);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const core::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_bad([](auto& r) { r.energy = 0.0; }, "--energy");
  expect_bad([](auto& r) { r.energy = 1.5; }, "--energy");
  expect_bad([](auto& r) { r.rank_ratio = -0.1; }, "--rank-ratio");
  expect_bad([](auto& r) { r.energy = 0.9, r.rank_ratio = 0.5; }, "one rank rule");
  expect_bad([](auto& r) { r.param_budget = "lots"; }, "--param-budget");
  expect_bad([](auto& r) { r.layers = {"patch"}; }, "blocks' Linears only");
  expect_bad([](auto& r) { r.layers = {"qkvv"}; }, "--layers");
  expect_bad([](auto& r) { r.method = "qr"; }, "--method");
  expect_bad([](auto& r) { r.distill = true; }, "--distill");
}

}  // namespace
}  // namespace vitopt::lowrank
