// Input-resolution change: the same side is the same model, a constant position grid stays
// constant, upsampling matches a naive bicubic (PyTorch's convention, A = -0.75, clamped taps),
// every other weight and mask is carried, and the resized model runs on the new side.
#include "model/edit/resolution.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "vit_test_util.h"

namespace vitopt::edit {
namespace {

// Keys's cubic convolution weight at distance d with PyTorch's A = -0.75.
double cubic(double d) {
  constexpr double A = -0.75;
  d = std::abs(d);
  if (d <= 1) return ((A + 2) * d - (A + 3)) * d * d + 1;
  if (d < 2) return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
  return 0;
}

// Naive separable bicubic resize of a (g, g) grid to (n, n), align_corners false.
std::vector<double> naive_bicubic(const std::vector<double>& in, int g, int n) {
  const double scale = static_cast<double>(g) / n;
  auto tap = [&](int i) { return std::clamp(i, 0, g - 1); };
  std::vector<double> out(static_cast<size_t>(n) * n, 0.0);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double sy = (y + 0.5) * scale - 0.5, sx = (x + 0.5) * scale - 0.5;
      const int y0 = static_cast<int>(std::floor(sy)), x0 = static_cast<int>(std::floor(sx));
      double v = 0;
      for (int dy = -1; dy <= 2; ++dy)
        for (int dx = -1; dx <= 2; ++dx)
          v += cubic(sy - (y0 + dy)) * cubic(sx - (x0 + dx)) *
               in[static_cast<size_t>(tap(y0 + dy) * g + tap(x0 + dx))];
      out[static_cast<size_t>(y * n + x)] = v;
    }
  return out;
}

TEST(Resolution, SameSideIsTheSameModel) {
  auto m = testing::random_vit(testing::tiny_config(), 1);
  auto r = resize_input(m, 28);
  const auto x = torch::randn({3, 1, 28, 28});
  EXPECT_TRUE(torch::equal(m->forward(x), r->forward(x)));
}

TEST(Resolution, ConstantGridStaysConstantAndPrefixIsKept) {
  const int C = 5, prefix = 1;
  const auto v = torch::randn({1, 1, C});
  const auto pos = torch::cat({torch::randn({1, prefix, C}), v.expand({1, 16, C})}, 1);  // g 4
  for (int n : {2, 3, 6}) {
    const auto out = resample_pos_embed(pos, prefix, n);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, prefix + n * n, C}));
    EXPECT_TRUE(torch::equal(out.slice(1, 0, prefix), pos.slice(1, 0, prefix)));
    EXPECT_TRUE(torch::allclose(out.slice(1, prefix), v.expand({1, n * n, C}), 1e-5, 1e-6))
        << "grid " << n;
  }
}

TEST(Resolution, UpsamplingIsBicubic) {
  const int g = 3, n = 5, C = 2;
  const auto pos = torch::randn({1, 1 + g * g, C});
  const auto out = resample_pos_embed(pos, 1, n);
  for (int c = 0; c < C; ++c) {
    std::vector<double> in;
    for (int i = 0; i < g * g; ++i) in.push_back(pos[0][1 + i][c].item<double>());
    const auto want = naive_bicubic(in, g, n);
    for (int i = 0; i < n * n; ++i)
      EXPECT_NEAR(out[0][1 + i][c].item<double>(), want[static_cast<size_t>(i)], 1e-5)
          << "channel " << c << " cell " << i;
  }
}

TEST(Resolution, OtherWeightsAndMasksCarriedAndTheModelRuns) {
  auto m = testing::random_vit(testing::tiny_config(), 2);
  const auto mask = (torch::rand({64, 32}) > 0.5).to(torch::kFloat);
  m->block(0).mlp->fc1->set_mask(mask);
  auto r = resize_input(m, 14);
  EXPECT_EQ(r->config().image_size, 14);
  EXPECT_EQ(r->config().num_tokens(), 1 + 4);
  auto src = m->named_parameters();
  for (const auto& item : r->named_parameters()) {
    if (item.key() == "pos_embed") continue;
    EXPECT_TRUE(torch::equal(item.value(), src[item.key()])) << item.key();
  }
  ASSERT_TRUE(r->block(0).mlp->fc1->mask.defined());
  EXPECT_TRUE(torch::equal(r->block(0).mlp->fc1->mask, mask));
  const int64_t C = m->config().embed_dim;
  int64_t before = 0, after = 0;
  for (const auto& p : m->parameters()) before += p.numel();
  for (const auto& p : r->parameters()) after += p.numel();
  EXPECT_EQ(before - after, (16 - 4) * C);  // the 4x4 position grid became 2x2
  const auto logits = r->forward(torch::randn({2, 1, 14, 14}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_THROW(resize_input(m, 15), core::InputError);
}

}  // namespace
}  // namespace vitopt::edit
