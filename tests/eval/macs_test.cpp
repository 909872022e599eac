// io::count_macs against counted operations: an independent naive ViT forward (plain loops
// over the module's weights) counts every multiply-accumulate it performs and must reproduce both
// the analytic count and the LibTorch logits. Also per-block parameter counts vs the module.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "eval/efficiency.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "model/vit.h"

namespace vitopt::eval {
namespace {

using Mat = std::vector<double>;  // row-major (rows, cols)

struct Counter {
  int64_t macs = 0;
};

std::vector<double> values(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// y (rows, out) = x (rows, in) @ w^T (+ b), w (out, in): rows*out*in MACs.
Mat matmul_t(const Mat& x, int64_t rows, int64_t in, const std::vector<double>& w, int64_t out,
             const std::vector<double>* b, Counter& n) {
  Mat y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b != nullptr ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) {
        s += x[r * in + i] * w[o * in + i];
        ++n.macs;
      }
      y[r * out + o] = s;
    }
  return y;
}

Mat linear(const Mat& x, int64_t rows, model::LinearImpl& l, Counter& n) {
  const auto b = l.bias.defined() ? values(l.bias) : std::vector<double>{};
  const auto* bp = l.bias.defined() ? &b : nullptr;
  if (l.rank > 0) {  // two thin products: (rows, in) -> (rows, r) -> (rows, out)
    const auto t = matmul_t(x, rows, l.in_features, values(l.weight_v), l.rank, nullptr, n);
    return matmul_t(t, rows, l.rank, values(l.weight_u), l.out_features, bp, n);
  }
  return matmul_t(x, rows, l.in_features, values(l.weight), l.out_features, bp, n);
}

Mat layer_norm(const Mat& x, int64_t rows, int64_t c, torch::nn::LayerNormImpl& ln, double eps) {
  const auto g = values(ln.weight), b = values(ln.bias);
  Mat y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < c; ++i) mean += x[r * c + i];
    mean /= c;
    for (int64_t i = 0; i < c; ++i) var += (x[r * c + i] - mean) * (x[r * c + i] - mean);
    var /= c;
    for (int64_t i = 0; i < c; ++i)
      y[r * c + i] = (x[r * c + i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
  }
  return y;
}

// One image (C_in, S, S) -> logits (K), counting MACs.
std::vector<double> naive_forward(model::ViTImpl& vit, const Mat& image, Counter& n) {
  const auto& c = vit.config();
  const int64_t C = c.embed_dim, P = c.patch_size, G = c.grid(), N = c.num_tokens(),
                pre = c.num_prefix_tokens(), S = c.image_size, D = c.head_dim;
  Mat h(N * C);
  // Patch embedding as a dot product per (patch, channel).
  const auto w = values(vit.patch_embed_proj->weight), pb = values(vit.patch_embed_proj->bias);
  for (int64_t gy = 0; gy < G; ++gy)
    for (int64_t gx = 0; gx < G; ++gx)
      for (int64_t o = 0; o < C; ++o) {
        double s = pb[o];
        for (int64_t ci = 0; ci < c.in_channels; ++ci)
          for (int64_t py = 0; py < P; ++py)
            for (int64_t px = 0; px < P; ++px) {
              s += image[(ci * S + gy * P + py) * S + gx * P + px] *
                   w[((o * c.in_channels + ci) * P + py) * P + px];
              ++n.macs;
            }
        h[(pre + gy * G + gx) * C + o] = s;
      }
  const auto cls = values(vit.cls_token), pos = values(vit.pos_embed);
  for (int64_t i = 0; i < C; ++i) h[i] = cls[i];
  if (c.distill_token) {
    const auto dist = values(vit.dist_token);
    for (int64_t i = 0; i < C; ++i) h[C + i] = dist[i];
  }
  for (int64_t i = 0; i < N * C; ++i) h[i] += pos[i];

  for (int b = 0; b < c.depth; ++b) {
    auto& blk = vit.block(b);
    if (blk.attn) {
      auto& a = *blk.attn;
      const int64_t H = a.heads;
      const auto x = layer_norm(h, N, C, *blk.norm1, c.ln_eps);
      const auto qkv = linear(x, N, *a.qkv, n);  // (N, 3*H*D), rows ordered (3, H, D)
      Mat ctx(N * H * D, 0.0);
      for (int64_t hh = 0; hh < H; ++hh)
        for (int64_t i = 0; i < N; ++i) {
          std::vector<double> att(N);
          double mx = -1e300;
          for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t d = 0; d < D; ++d) {
              s += qkv[i * 3 * H * D + hh * D + d] * qkv[j * 3 * H * D + (H + hh) * D + d];
              ++n.macs;
            }
            att[j] = s / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, att[j]);
          }
          double z = 0;
          for (auto& v : att) z += (v = std::exp(v - mx));
          for (int64_t j = 0; j < N; ++j)
            for (int64_t d = 0; d < D; ++d) {
              ctx[i * H * D + hh * D + d] += att[j] / z * qkv[j * 3 * H * D + (2 * H + hh) * D + d];
              ++n.macs;
            }
        }
      const auto o = linear(ctx, N, *a.proj, n);
      for (int64_t i = 0; i < N * C; ++i) h[i] += o[i];
    }
    if (blk.mlp) {
      const auto x = layer_norm(h, N, C, *blk.norm2, c.ln_eps);
      auto u = linear(x, N, *blk.mlp->fc1, n);
      for (auto& v : u) v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      const auto o = linear(u, N, *blk.mlp->fc2, n);
      for (int64_t i = 0; i < N * C; ++i) h[i] += o[i];
    }
  }
  h = layer_norm(h, N, C, *vit.norm, c.ln_eps);
  Mat pooled(C, 0.0);
  if (c.pool == "avg") {
    for (int64_t t = pre; t < N; ++t)
      for (int64_t i = 0; i < C; ++i) pooled[i] += h[t * C + i] / static_cast<double>(N - pre);
  } else {
    pooled.assign(h.begin(), h.begin() + C);
  }
  auto logits = linear(pooled, 1, *vit.head, n);
  if (c.distill_token) {
    const Mat tok(h.begin() + C, h.begin() + 2 * C);
    const auto d = linear(tok, 1, *vit.head_dist, n);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = (logits[i] + d[i]) / 2;
  }
  return logits;
}

void check_model(io::ViTConfig config) {
  config.normalize("test");
  model::ViT vit(config);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (auto& p : vit->parameters()) p.normal_(0, 0.3);  // non-trivial norms/biases too
  }
  vit->eval();
  const auto& c = vit->config();
  auto x = torch::randn({1, c.in_channels, c.image_size, c.image_size});
  Counter n;
  const auto naive = naive_forward(*vit, values(x), n);
  EXPECT_EQ(n.macs, io::count_macs(c)) << c.to_json().dump();
  torch::NoGradGuard no_grad;
  const auto ref = values(vit->forward(x));
  ASSERT_EQ(ref.size(), naive.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(naive[i], ref[i], 1e-3) << "logit " << i;

  // Per-block parameters against the module's own tensors.
  const auto per_block = io::block_params(c);
  int64_t total = 0, blocks = 0;
  for (const auto& p : vit->named_parameters()) {
    total += p.value().numel();
    if (p.key().rfind("blocks.", 0) == 0) blocks += p.value().numel();
  }
  int64_t sum_blocks = 0;
  for (auto v : per_block) sum_blocks += v;
  EXPECT_EQ(sum_blocks, blocks);
  EXPECT_EQ(sum_blocks + io::other_params(c), total);
  EXPECT_EQ(total, io::count_params(c));
  for (int b = 0; b < c.depth; ++b) {
    int64_t mine = 0;
    for (const auto& p : vit->named_parameters())
      if (p.key().rfind("blocks." + std::to_string(b) + ".", 0) == 0) mine += p.value().numel();
    EXPECT_EQ(per_block[b], mine) << "block " << b;
  }
}

TEST(Macs, TinyPresetMatchesCountedOps) { check_model(io::preset("vit-tiny-test")); }

TEST(Macs, SlimmedLowRankDistilledMatchesCountedOps) {
  auto c = io::preset("vit-tiny-test");
  c.depth = 3;
  c.distill_token = true;
  c.blocks.assign(3, io::BlockConfig{});
  c.blocks[0].num_heads = 1;  // one head kept
  c.blocks[0].kept_heads = {1};
  c.blocks[0].mlp_dim = 24;  // slimmed MLP
  c.blocks[1].skip_mlp = true;
  c.blocks[1].qkv_rank = 4;  // low-rank qkv
  c.blocks[1].fc1_rank = 0;
  c.blocks[2].fc2_rank = 5;
  check_model(c);
}

TEST(Macs, AveragePoolingMatchesCountedOps) {
  auto c = io::preset("vit-tiny-test");
  c.pool = "avg";
  check_model(c);
}

}  // namespace
}  // namespace vitopt::eval
