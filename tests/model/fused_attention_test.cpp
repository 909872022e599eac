// Fused attention (model/fused_attention.h) against the plain path (matmul, softmax, matmul with
// the key bias added), for both implementations (per-head CPU kernels, tiled ops): values and
// q/k/v gradients at token counts on and off the tile and row-block sizes (1, 5, 129, 197, 300;
// one head of 197), head dims 16 and 64, with and without key_bias, in float64 (tight) and
// float32; large-magnitude scores (a softmax without the running max overflows); gradients for
// every subset of q/k/v; strided inputs; and that backward keeps no (N, N)-sized tensor.
// Legend: B batch, H heads, N tokens, D head dim.
#include "model/fused_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "vit_test_util.h"

namespace vitopt::model {
namespace {

// The reference: softmax(q k^T * scale + key_bias) v with the full (B, H, N, N) matrix.
torch::Tensor plain_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale, const torch::Tensor& key_bias) {
  auto s = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, N, N)
  if (key_bias.defined()) s = s + key_bias.view({key_bias.size(0), 1, 1, key_bias.size(1)});
  return torch::matmul(s.softmax(-1), v);
}

// max |a - b| / max(max |b|, 1): relative to the tensor's scale, so near-zero entries don't
// dominate, and absolute for tensors that are ~0 (at N = 1 dq and dk are exactly 0: softmax over
// one key is constant, and the fused path leaves rounding noise there).
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  const double denom = std::max(b.abs().max().item<double>(), 1.0);
  return (a - b).abs().max().item<double>() / denom;
}

struct Case {
  int64_t B = 2, H = 3, N = 5, D = 16;
  bool bias = false;
  double magnitude = 1;  // q and k are drawn N(0, magnitude^2)
  torch::Dtype dtype = torch::kDouble;
  std::string name() const {
    return "B=" + std::to_string(B) + " H=" + std::to_string(H) + " N=" + std::to_string(N) +
           " D=" + std::to_string(D) + (bias ? " bias" : "") + " mag=" + std::to_string(magnitude);
  }
};

struct Errors {
  double out = 0, dq = 0, dk = 0, dv = 0;
  bool finite = true;
};

// Runs fused on random inputs in c.dtype and the plain path on the same inputs cast to
// `ref_dtype`, both with the same random upstream gradient; returns fused's relative errors in
// the value and the q, k, v gradients.
Errors compare(const Case& c, torch::Dtype ref_dtype) {
  const auto opt = torch::TensorOptions().dtype(c.dtype);
  auto q = (torch::randn({c.B, c.H, c.N, c.D}, opt) * c.magnitude).requires_grad_();
  auto k = (torch::randn({c.B, c.H, c.N, c.D}, opt) * c.magnitude).requires_grad_();
  auto v = torch::randn({c.B, c.H, c.N, c.D}, opt).requires_grad_();
  // Proportional attention's log(size) for merged-token sizes 1..10.
  const auto bias = c.bias ? torch::randint(1, 11, {c.B, c.N}, opt).log() : torch::Tensor();
  const auto g = torch::randn({c.B, c.H, c.N, c.D}, opt);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));

  const auto out = fused_attention(q, k, v, scale, bias);
  const auto grads = torch::autograd::grad({out}, {q, k, v}, {g});

  const auto cast = [&](const torch::Tensor& t) {
    return t.defined() ? t.detach().to(ref_dtype).requires_grad_(t.requires_grad()) : t;
  };
  const auto rq = cast(q), rk = cast(k), rv = cast(v);
  const auto ref = plain_attention(rq, rk, rv, scale, cast(bias));
  const auto rgrads = torch::autograd::grad({ref}, {rq, rk, rv}, {g.to(ref_dtype)});

  const auto d = [&](const torch::Tensor& t) { return t.to(ref_dtype); };
  Errors e{rel_err(d(out), ref), rel_err(d(grads[0]), rgrads[0]), rel_err(d(grads[1]), rgrads[1]),
           rel_err(d(grads[2]), rgrads[2])};
  for (const auto& t : {out, grads[0], grads[1], grads[2]})
    e.finite = e.finite && torch::isfinite(t).all().item<bool>();
  return e;
}

void expect_close(const Case& c, const Errors& e, double tol) {
  EXPECT_TRUE(e.finite) << c.name();
  EXPECT_LT(e.out, tol) << "output, " << c.name();
  EXPECT_LT(e.dq, tol) << "dq, " << c.name();
  EXPECT_LT(e.dk, tol) << "dk, " << c.name();
  EXPECT_LT(e.dv, tol) << "dv, " << c.name();
}

std::vector<Case> shape_grid(torch::Dtype dtype) {
  std::vector<Case> cases;
  for (int64_t n : {1, 5, 129, 197, 300})
    for (int64_t d : {16, 64})
      for (bool bias : {false, true}) {
        Case c;
        c.N = n, c.D = d, c.bias = bias, c.dtype = dtype;
        cases.push_back(c);
      }
  // One head in all (fewer heads than threads: heads run one after another, GEMMs threaded).
  Case one;
  one.B = 1, one.H = 1, one.N = 197, one.D = 64, one.bias = true, one.dtype = dtype;
  cases.push_back(one);
  return cases;
}

// Both implementations on CPU tensors: the per-head CPU kernels (what the CPU runs) and the
// device-generic tiled ops (what other devices run), switched per test.
class FusedAttentionImpl : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { detail::use_tiled_fused_attention_on_cpu(GetParam()); }
  void TearDown() override { detail::use_tiled_fused_attention_on_cpu(false); }
};
INSTANTIATE_TEST_SUITE_P(Cpu, FusedAttentionImpl, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Tiled" : "PerHead"; });

TEST_P(FusedAttentionImpl, MatchesPlainInFloat64) {
  torch::manual_seed(1);
  for (const auto& c : shape_grid(torch::kDouble)) expect_close(c, compare(c, torch::kDouble), 1e-12);
}

TEST_P(FusedAttentionImpl, MatchesPlainInFloat32) {
  torch::manual_seed(2);
  for (const auto& c : shape_grid(torch::kFloat)) expect_close(c, compare(c, torch::kFloat), 1e-5);
}

TEST_P(FusedAttentionImpl, StableWithLargeScores) {
  // Scores ~ +-1000 (q, k ~ N(0, 30^2), D = 64): exp() of an unshifted score overflows even in
  // float64, so only a softmax that subtracts the running row max survives.
  torch::manual_seed(3);
  for (int64_t n : {5, 197, 300}) {
    Case c;
    c.N = n, c.D = 64, c.magnitude = 30, c.bias = (n != 5);
    expect_close(c, compare(c, torch::kDouble), 1e-12);
    // float32 against a float64 reference. Two rounding effects the plain float32 path shares
    // only in part: a score of ~1000 rounded to float32 moves its probability by ~1e-4 relative;
    // and where a row's softmax saturates (one-hot), the fused backward's Delta = rowsum(dO O)
    // cancels dP only up to float32 rounding (plain's rowsum(P dP) cancels exactly), leaving
    // ~eps |dO| |v| scale |k| ~ 5e-5 in dq and dk. An overflow or a missed rescale errs by O(1)
    // or gives NaN, far above this bar.
    c.dtype = torch::kFloat;
    expect_close(c, compare(c, torch::kDouble), 2e-3);
  }
}

TEST_P(FusedAttentionImpl, LargeKeyBiasIsStable) {
  // A bias of +-500 on some keys: rows dominated by one key and keys with ~zero probability.
  torch::manual_seed(4);
  const auto opt = torch::TensorOptions().dtype(torch::kDouble);
  auto q = torch::randn({2, 2, 197, 16}, opt).requires_grad_();
  auto k = torch::randn({2, 2, 197, 16}, opt).requires_grad_();
  auto v = torch::randn({2, 2, 197, 16}, opt).requires_grad_();
  const auto bias = torch::randn({2, 197}, opt) * 500;
  const auto g = torch::randn({2, 2, 197, 16}, opt);
  const auto out = fused_attention(q, k, v, 0.25, bias);
  const auto ref = plain_attention(q, k, v, 0.25, bias);
  EXPECT_LT(rel_err(out, ref), 1e-12);
  const auto gf = torch::autograd::grad({out}, {q, k, v}, {g});
  const auto gr = torch::autograd::grad({ref}, {q, k, v}, {g});
  for (int i = 0; i < 3; ++i) EXPECT_LT(rel_err(gf[i], gr[i]), 1e-12) << "input " << i;
}

TEST_P(FusedAttentionImpl, GradientForEverySubsetOfInputs) {
  torch::manual_seed(5);
  const auto opt = torch::TensorOptions().dtype(torch::kDouble);
  const auto q0 = torch::randn({2, 2, 150, 16}, opt), k0 = torch::randn({2, 2, 150, 16}, opt),
             v0 = torch::randn({2, 2, 150, 16}, opt), g = torch::randn({2, 2, 150, 16}, opt);
  const auto bias = torch::rand({2, 150}, opt);
  for (int mask = 0; mask < 8; ++mask) {
    std::vector<torch::Tensor> in = {q0.clone(), k0.clone(), v0.clone()}, wrt;
    for (int i = 0; i < 3; ++i)
      if (mask & (1 << i)) wrt.push_back(in[i].requires_grad_());
    const auto out = fused_attention(in[0], in[1], in[2], 0.25, bias);
    const auto ref = plain_attention(in[0], in[1], in[2], 0.25, bias);
    EXPECT_LT(rel_err(out.detach(), ref.detach()), 1e-12) << "mask " << mask;
    EXPECT_EQ(out.requires_grad(), mask != 0) << "mask " << mask;
    if (wrt.empty()) continue;
    const auto gf = torch::autograd::grad({out}, wrt, {g});
    const auto gr = torch::autograd::grad({ref}, wrt, {g});
    for (size_t i = 0; i < wrt.size(); ++i)
      EXPECT_LT(rel_err(gf[i], gr[i]), 1e-12) << "mask " << mask << " grad " << i;
  }
}

TEST_P(FusedAttentionImpl, StridedInputsAndUpstreamGradient) {
  // q, k, v as ViT makes them: permuted views of one (B, N, 3, H, D) qkv tensor; the upstream
  // gradient arrives transposed, as it does from ctx.transpose(1, 2).
  torch::manual_seed(6);
  const auto opt = torch::TensorOptions().dtype(torch::kDouble);
  auto qkv = torch::randn({2, 197, 3, 3, 16}, opt).requires_grad_();
  const auto g = torch::randn({2, 197, 3, 16}, opt).transpose(1, 2);  // (B, H, N, D), strided
  const auto run = [&](bool fused) {
    const auto p = qkv.permute({2, 0, 3, 1, 4});
    const auto out = fused ? fused_attention(p[0], p[1], p[2], 0.25)
                           : plain_attention(p[0], p[1], p[2], 0.25, {});
    return std::make_pair(out, torch::autograd::grad({out}, {qkv}, {g})[0]);
  };
  const auto [out_f, grad_f] = run(true);
  const auto [out_p, grad_p] = run(false);
  EXPECT_LT(rel_err(out_f, out_p), 1e-12);
  EXPECT_LT(rel_err(grad_f, grad_p), 1e-12);
}

TEST(FusedAttention, KeyBiasGetsNoGradient) {
  torch::manual_seed(7);
  auto q = torch::randn({1, 2, 9, 8}).requires_grad_();
  const auto k = torch::randn({1, 2, 9, 8}), v = torch::randn({1, 2, 9, 8});
  auto bias = torch::rand({1, 9}).requires_grad_();
  const auto out = fused_attention(q, k, v, 0.3, bias);
  const auto grads = torch::autograd::grad({out.sum()}, {q, bias}, {}, {}, false,
                                           /*allow_unused=*/true);
  EXPECT_TRUE(grads[0].defined());
  EXPECT_FALSE(grads[1].defined());
}

TEST(FusedAttention, SavesNothingQuadraticInTokens) {
  const int64_t B = 2, H = 3, N = 300, D = 16;
  auto q = torch::randn({B, H, N, D}).requires_grad_();
  auto k = torch::randn({B, H, N, D}).requires_grad_();
  auto v = torch::randn({B, H, N, D}).requires_grad_();
  const auto out = fused_attention(q, k, v, 0.25, torch::zeros({B, N}));
  const auto saved = fused_attention_saved(out);
  ASSERT_FALSE(saved.empty());
  int64_t total = 0;
  for (const auto& t : saved) {
    if (!t.defined()) continue;
    EXPECT_LE(t.numel(), B * H * N * D) << "saved tensor [" << t.sizes() << "]";
    total += t.numel();
  }
  // q, k, v, the output (4 BHND), the logsumexp (BHN) and the bias (BN): a fifth of one BHNN here.
  EXPECT_EQ(total, 4 * B * H * N * D + B * H * N + B * N);
  EXPECT_LT(total, B * H * N * N);
  EXPECT_TRUE(fused_attention_saved(plain_attention(q, k, v, 0.25, {})).empty());
}

TEST(FusedAttention, RejectsBadArguments) {
  const auto q = torch::randn({1, 2, 5, 4});
  EXPECT_THROW(fused_attention(q, torch::randn({1, 2, 6, 4}), q, 1.0), core::InternalError);
  EXPECT_THROW(fused_attention(q, q, q.to(torch::kDouble), 1.0), core::InternalError);
  EXPECT_THROW(fused_attention(q, q, q, 1.0, torch::zeros({1, 4})), core::InternalError);
  EXPECT_THROW(fused_attention(q[0], q[0], q[0], 1.0), core::InternalError);
  EXPECT_THROW(fused_attention(q.to(torch::kHalf), q.to(torch::kHalf), q.to(torch::kHalf), 1.0),
               core::InternalError);
}

TEST(FusedAttention, RefusesDoubleBackward) {
  auto q = torch::randn({1, 1, 4, 4}).requires_grad_();
  const auto out = fused_attention(q, q, q, 0.5);
  EXPECT_ANY_THROW(torch::autograd::grad({out.sum()}, {q}, {}, {}, /*create_graph=*/true));
}

// The ViT's training forward takes the fused path when asked ("auto" from kFusedMinTokens
// tokens): the same loss and parameter gradients as the plain path, with token merging's key bias
// too, and the plain path still runs without gradients (nothing to save).
TEST(FusedAttention, VitTrainingStepMatchesPlainPath) {
  auto c = testing::tiny_config(3, 2);
  c.image_size = 56;  // 64 patches + cls
  c.normalize("fused vit");
  const auto x = testing::random_images(c, 3, 21);
  const auto y = torch::tensor({1, 4, 7}, torch::kLong);
  for (int merge : {0, 6}) {
    std::vector<torch::Tensor> grads[2];
    double losses[2] = {0, 0};
    for (int mode = 0; mode < 2; ++mode) {
      set_training_attention(mode == 0 ? "plain" : "fused");
      auto vit = testing::parity_vit(c, 22);
      vit->set_merge({merge, merge, merge});
      vit->train();
      const auto loss = torch::nn::functional::cross_entropy(vit->forward(x), y);
      loss.backward();
      losses[mode] = loss.item<double>();
      for (const auto& p : vit->parameters()) grads[mode].push_back(p.grad().clone());
    }
    EXPECT_NEAR(losses[0], losses[1], 1e-5 * std::max(1.0, std::abs(losses[0]))) << merge;
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (size_t i = 0; i < grads[0].size(); ++i) {
      const double scale = std::max(1e-3, grads[0][i].abs().max().item<double>());
      EXPECT_LT((grads[0][i] - grads[1][i]).abs().max().item<double>(), 1e-4 * scale) << merge << " " << i;
    }
  }
  set_training_attention("auto");
  EXPECT_FALSE(use_fused_attention(kFusedMinTokens - 1));
  EXPECT_TRUE(use_fused_attention(kFusedMinTokens));
  EXPECT_THROW(set_training_attention("flash"), core::InputError);
}

}  // namespace
}  // namespace vitopt::model
