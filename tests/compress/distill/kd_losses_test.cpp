// KD loss functions against hand-computed values and known identities: KL * T^2, the gradient
// T * (p_s - p_t) / B, hard distillation = CE on the teacher's argmax, head mapping, attention KL,
// token alignment, and the normalized feature MSE.
#include "compress/distill/kd_losses.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace vitopt::distill {
namespace {

// Naive softmax of one row with temperature, in double.
std::vector<double> softmax_row(const std::vector<double>& z, double T) {
  double mx = z[0];
  for (double v : z) mx = std::max(mx, v);
  std::vector<double> p(z.size());
  double sum = 0;
  for (size_t i = 0; i < z.size(); ++i) sum += p[i] = std::exp((z[i] - mx) / T);
  for (auto& v : p) v /= sum;
  return p;
}

torch::Tensor rows(const std::vector<std::vector<double>>& v) {
  auto t = torch::empty({static_cast<int64_t>(v.size()), static_cast<int64_t>(v[0].size())},
                        torch::kDouble);
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = 0; j < v[i].size(); ++j) t[i][j] = v[i][j];
  return t;
}

const std::vector<std::vector<double>> kStudent = {{1.0, -0.5, 2.0}, {0.3, 0.3, -1.2}};
const std::vector<std::vector<double>> kTeacher = {{0.5, 1.5, 1.0}, {2.0, -1.0, 0.0}};

TEST(KdLosses, LogitLossIsBatchMeanKlTimesTSquared) {
  for (double T : {1.0, 2.0, 4.0}) {
    double expected = 0;
    for (size_t b = 0; b < kStudent.size(); ++b) {
      const auto ps = softmax_row(kStudent[b], T), pt = softmax_row(kTeacher[b], T);
      for (size_t k = 0; k < ps.size(); ++k) expected += pt[k] * std::log(pt[k] / ps[k]);
    }
    expected = expected / 2 * T * T;
    const double got = kd_logit_loss(rows(kStudent), rows(kTeacher), T).item<double>();
    EXPECT_NEAR(got, expected, 1e-12) << "T=" << T;
  }
  // Identical logits: no divergence.
  EXPECT_NEAR(kd_logit_loss(rows(kTeacher), rows(kTeacher), 3.0).item<double>(), 0.0, 1e-12);
}

TEST(KdLosses, GradientIsTTimesProbabilityGapOverBatch) {
  // d/ds [T^2 KL(p_t^T || p_s^T)] = T (p_s^T - p_t^T) / B: the T^2 factor keeps the soft-target
  // gradient on the scale of the hard-label one (Hinton et al.).
  for (double T : {1.0, 3.0, 10.0}) {
    auto s = rows(kStudent).requires_grad_(true);
    kd_logit_loss(s, rows(kTeacher), T).backward();
    for (size_t b = 0; b < kStudent.size(); ++b) {
      const auto ps = softmax_row(kStudent[b], T), pt = softmax_row(kTeacher[b], T);
      for (size_t k = 0; k < ps.size(); ++k)
        EXPECT_NEAR(s.grad()[b][k].item<double>(), T * (ps[k] - pt[k]) / 2, 1e-12)
            << "T=" << T << " b=" << b << " k=" << k;
    }
  }
}

TEST(KdLosses, HardDistillationIsCrossEntropyOnTeacherArgmax) {
  // Teacher argmax: row 0 -> class 1, row 1 -> class 0.
  const std::vector<size_t> target = {1, 0};
  double expected = 0;
  for (size_t b = 0; b < 2; ++b) expected -= std::log(softmax_row(kStudent[b], 1.0)[target[b]]);
  expected /= 2;
  EXPECT_NEAR(hard_distill_loss(rows(kStudent), rows(kTeacher)).item<double>(), expected, 1e-12);
}

TEST(KdLosses, TeacherHeadsAverageInGroupsOrRepeat) {
  // (B=1, Ht=4, N=2, N=2): head h row r = [a, 1-a] with a = 0.1 * (h + 1) + 0.05 * r.
  auto t = torch::empty({1, 4, 2, 2}, torch::kDouble);
  for (int h = 0; h < 4; ++h)
    for (int r = 0; r < 2; ++r) {
      const double a = 0.1 * (h + 1) + 0.05 * r;
      t[0][h][r][0] = a;
      t[0][h][r][1] = 1 - a;
    }
  const auto two = map_teacher_heads(t, 2);  // heads {0,1} and {2,3} averaged
  ASSERT_EQ(two.sizes(), (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_NEAR(two[0][0][0][0].item<double>(), (0.1 + 0.2) / 2, 1e-12);
  EXPECT_NEAR(two[0][1][1][0].item<double>(), (0.35 + 0.45) / 2, 1e-12);
  EXPECT_NEAR(two.sum(-1).min().item<double>(), 1.0, 1e-12);  // still row-stochastic
  const auto one = map_teacher_heads(t, 1);
  EXPECT_NEAR(one[0][0][0][0].item<double>(), (0.1 + 0.2 + 0.3 + 0.4) / 4, 1e-12);
  const auto eight = map_teacher_heads(t, 8);  // each teacher head twice, in order
  EXPECT_TRUE(torch::equal(eight.select(1, 5), t.select(1, 2)));
  EXPECT_TRUE(torch::equal(map_teacher_heads(t, 4), t));
  EXPECT_THROW(map_teacher_heads(t, 3), core::InputError);
}

TEST(KdLosses, AttentionKlAndMseMatchHandValues) {
  // One row pair: teacher [0.7, 0.3], student [0.5, 0.5]; second row identical (KL 0).
  auto t = torch::tensor({0.7, 0.3, 0.2, 0.8}, torch::kDouble).view({1, 1, 2, 2});
  auto s = torch::tensor({0.5, 0.5, 0.2, 0.8}, torch::kDouble).view({1, 1, 2, 2});
  const double kl_row = 0.7 * std::log(0.7 / 0.5) + 0.3 * std::log(0.3 / 0.5);
  EXPECT_NEAR(attention_loss(s, t, "kl").item<double>(), kl_row / 2, 1e-9);
  EXPECT_NEAR(attention_loss(s, t, "mse").item<double>(), (0.04 + 0.04) / 4, 1e-12);
  EXPECT_THROW(attention_loss(s, t, "l1"), core::InputError);
}

TEST(KdLosses, CommonTokensDropTheDistillationToken) {
  // Tokens [cls, dist, p0, p1] with values 0..3 along dim 1.
  auto h = torch::arange(4, torch::kDouble).view({1, 4, 1});
  const auto c = common_tokens(h, 2, 1);
  ASSERT_EQ(c.size(1), 3);
  EXPECT_EQ(c[0][1][0].item<double>(), 2.0);
  EXPECT_TRUE(torch::equal(common_tokens(h, 1, 1), h));
  // Attention (1,1,3,3) with token 1 = dist: its row/column go, rows renormalize.
  auto a = torch::tensor({0.2, 0.5, 0.3, 0.1, 0.1, 0.8, 0.25, 0.5, 0.25}, torch::kDouble)
               .view({1, 1, 3, 3});
  const auto ca = common_attention(a, 2);  // keep rows/cols {0, 2}
  ASSERT_EQ(ca.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_NEAR(ca[0][0][0][0].item<double>(), 0.2 / 0.5, 1e-12);
  EXPECT_NEAR(ca[0][0][1][1].item<double>(), 0.25 / 0.5, 1e-12);
}

TEST(KdLosses, FeatureLossIsMseOfLayerNormedStates) {
  // LayerNorm removes per-token scale and shift: an affine copy of the teacher costs nothing.
  auto t = torch::randn({2, 5, 8}, torch::kDouble);
  EXPECT_NEAR(feature_loss(3.0 * t + 1.5, t).item<double>(), 0.0, 1e-6);
  // Naive check on one token: normalize both by hand.
  auto s = torch::randn({1, 1, 8}, torch::kDouble);
  auto norm = [](const torch::Tensor& v) {
    const auto m = v.mean();
    const auto var = (v - m).pow(2).mean();
    return (v - m) / (var + 1e-5).sqrt();
  };
  const double expected = (norm(s) - norm(t.slice(0, 0, 1).slice(1, 0, 1))).pow(2).mean().item<double>();
  EXPECT_NEAR(feature_loss(s, t.slice(0, 0, 1).slice(1, 0, 1)).item<double>(), expected, 1e-9);
}

}  // namespace
}  // namespace vitopt::distill
