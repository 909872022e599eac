// Truncated SVD against Eckart-Young, whitened truncation against plain on data that uses few
// directions, and the second moments the calibration pass records.
#include "compress/lowrank/spectrum.h"

#include <gtest/gtest.h>

#include "compress/lowrank/activation_aware.h"
#include "core/error.h"
#include "vit_test_util.h"

namespace vitopt::lowrank {
namespace {

TEST(Spectrum, TruncationErrorIsTheTailOfTheSingularValues) {
  torch::manual_seed(3);
  const auto w = torch::randn({20, 12});
  const LayerSpectrum sp(w);
  const auto s = sp.singular();
  ASSERT_EQ(s.size(), 12u);
  for (int r = 1; r <= 12; ++r) {
    double tail = 0;
    for (size_t i = static_cast<size_t>(r); i < s.size(); ++i) tail += s[i] * s[i];
    const double err = (w - sp.approximation(r)).pow(2).sum().item<double>();
    EXPECT_NEAR(err, tail, 1e-4 * (1 + tail)) << "rank " << r;
  }
  auto [u, v] = sp.factors(12);
  EXPECT_EQ(u.sizes(), (std::vector<int64_t>{20, 12}));
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{12, 12}));
  EXPECT_LT((u.mm(v) - w).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(sp.factors(0), core::InputError);
  EXPECT_THROW(sp.factors(13), core::InputError);
}

TEST(Spectrum, ActivationAwareBeatsPlainWhenInputsUseFewDirections) {
  torch::manual_seed(5);
  const int64_t n = 512, in = 32, out = 24, k = 3;
  const auto x = torch::randn({n, k}).mm(torch::randn({k, in}));  // inputs span 3 directions
  const auto w = torch::randn({out, in});
  const auto moment = x.to(torch::kDouble).t().mm(x.to(torch::kDouble)) / n;
  const LayerSpectrum plain(w), aware(w, whitening(moment));
  auto out_error = [&](const torch::Tensor& approx) {
    return ((x.mm(w.t()) - x.mm(approx.t())).norm() / x.mm(w.t()).norm()).item<double>();
  };
  const double e_plain = out_error(plain.approximation(k));
  const double e_aware = out_error(aware.approximation(k));
  EXPECT_LT(e_aware, 5e-3);          // rank 3 carries everything these inputs reach
  EXPECT_GT(e_plain, 20 * e_aware);  // plain SVD keeps directions the data never uses
  EXPECT_GT(e_plain, 0.05);
}

TEST(Spectrum, SecondMomentsOfLinearInputs) {
  auto c = testing::tiny_config(2, 2);
  auto m = testing::random_vit(c, 1, 0.1);
  const auto x = testing::random_images(c, 4, 2);
  const auto moments = input_second_moments(m, {"blocks.0.attn.qkv", "blocks.1.mlp.fc2"}, {x});
  ASSERT_EQ(moments.size(), 2u);
  // qkv reads norm1 of the embeddings (hidden[0]).
  model::Trace trace;
  trace.record_hidden = true;
  torch::NoGradGuard no_grad;
  m->forward(x, &trace);
  const auto rows =
      m->block(0).norm1(trace.hidden[0]).reshape({-1, c.embed_dim}).to(torch::kDouble);
  const auto expected = rows.t().mm(rows) / rows.size(0);
  EXPECT_LT((moments.at("blocks.0.attn.qkv") - expected).abs().max().item<double>(), 1e-9);
  EXPECT_EQ(moments.at("blocks.1.mlp.fc2").size(0), c.blocks[1].mlp_dim);
  EXPECT_FALSE(m->block(0).attn->qkv->input_transform);  // hooks removed afterwards
  EXPECT_THROW(input_second_moments(m, {"blocks.0.nothing"}, {x}), core::InputError);
}

}  // namespace
}  // namespace vitopt::lowrank
