// Shared helpers for the runtime tests: kernel levels this CPU runs, random data, and an
// independent naive ViT forward in double precision over the loader's plain arrays (the oracle
// the engine is checked against without LibTorch).
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "runtime/kernels/kernels.h"
#include "runtime/model_loader.h"
#include "runtime/random_model.h"

namespace vitopt::runtime::testing {

// Every SIMD level this CPU supports (each forces its own per-family kernels, kernels.h).
inline std::vector<kernels::Isa> simd_levels() {
  std::vector<kernels::Isa> out;
  for (auto isa : kernels::kAllIsas)
    if (isa != kernels::Isa::kRef && kernels::cpu_supports(isa)) out.push_back(isa);
  return out;
}

inline std::vector<float> randn(size_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// x (in) -> fake-quantized copy per the Linear's input spec (the documented semantics).
inline std::vector<float> fake_quant(const std::vector<float>& x, const io::InputQuant& q) {
  kernels::ActQuant aq{q.range().qmin, q.range().qmax, q.symmetric, q.dynamic, q.scale, q.zero_point};
  float s = q.scale;
  int zp = q.zero_point;
  if (q.dynamic) {
    float mn = x[0], mx = x[0];
    for (float v : x) mn = std::min(mn, v), mx = std::max(mx, v);
    kernels::dynamic_params(mn, mx, aq, &s, &zp);
  }
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    out[i] = s * static_cast<float>(kernels::quantize_value(x[i], s, zp, aq.qmin, aq.qmax) - zp);
  return out;
}

// One image through the model in double precision (inputs fake-quantized where the file says).
inline std::vector<double> naive_forward(const LoadedModel& m, const float* image) {
  const io::ViTConfig& c = m.config;
  const int C = c.embed_dim, N = c.num_tokens(), P = c.patch_size, G = c.grid(), D = c.head_dim;
  using Mat = std::vector<std::vector<double>>;
  auto apply = [](const std::vector<LinearData>& f, const Mat& x) {
    Mat cur = x;
    for (const LinearData& l : f) {
      const std::vector<float> w = l.dequantized();
      Mat out(cur.size(), std::vector<double>(static_cast<size_t>(l.out)));
      for (size_t r = 0; r < cur.size(); ++r) {
        std::vector<float> xin(cur[r].begin(), cur[r].end());
        if (l.iq) xin = fake_quant(xin, *l.iq);
        for (int o = 0; o < l.out; ++o) {
          double s = l.bias.empty() ? 0.0 : l.bias[static_cast<size_t>(o)];
          for (int i = 0; i < l.in; ++i) s += static_cast<double>(xin[static_cast<size_t>(i)]) * w[static_cast<size_t>(o * l.in + i)];
          out[r][static_cast<size_t>(o)] = s;
        }
      }
      cur = out;
    }
    return cur;
  };
  auto ln = [&](const Mat& x, const Norm& n) {
    Mat y = x;
    for (auto& row : y) {
      double mean = 0, var = 0;
      for (double v : row) mean += v;
      mean /= C;
      for (double v : row) var += (v - mean) * (v - mean);
      var /= C;
      for (int j = 0; j < C; ++j)
        row[static_cast<size_t>(j)] = (row[static_cast<size_t>(j)] - mean) / std::sqrt(var + c.ln_eps) * n.gamma[static_cast<size_t>(j)] + n.beta[static_cast<size_t>(j)];
    }
    return y;
  };
  Mat patches;
  for (int gy = 0; gy < G; ++gy)
    for (int gx = 0; gx < G; ++gx) {
      std::vector<double> f;
      for (int ch = 0; ch < c.in_channels; ++ch)
        for (int py = 0; py < P; ++py)
          for (int px = 0; px < P; ++px)
            f.push_back(image[(ch * c.image_size + gy * P + py) * c.image_size + gx * P + px]);
      patches.push_back(f);
    }
  const Mat emb = apply({m.patch}, patches);
  Mat x;
  x.emplace_back(m.cls_token.begin(), m.cls_token.end());
  if (c.distill_token) x.emplace_back(m.dist_token.begin(), m.dist_token.end());
  for (const auto& e : emb) x.push_back(e);
  for (int t = 0; t < N; ++t)
    for (int j = 0; j < C; ++j) x[static_cast<size_t>(t)][static_cast<size_t>(j)] += m.pos_embed[static_cast<size_t>(t * C + j)];
  for (int b = 0; b < c.depth; ++b) {
    const io::BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    const BlockData& bd = m.blocks[static_cast<size_t>(s.shared_with >= 0 ? s.shared_with : b)];
    if (!s.skip_attn) {
      const int H = s.num_heads, HD = H * D;
      const Mat qkv = apply(bd.qkv, ln(x, bd.norm1));
      Mat ctx(static_cast<size_t>(N), std::vector<double>(static_cast<size_t>(HD)));
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < N; ++i) {
          std::vector<double> sc(static_cast<size_t>(N));
          double mx = -1e300;
          for (int t = 0; t < N; ++t) {
            double d = 0;
            for (int e = 0; e < D; ++e) d += qkv[static_cast<size_t>(i)][static_cast<size_t>(h * D + e)] * qkv[static_cast<size_t>(t)][static_cast<size_t>(HD + h * D + e)];
            sc[static_cast<size_t>(t)] = d / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, sc[static_cast<size_t>(t)]);
          }
          double sum = 0;
          for (auto& v : sc) sum += (v = std::exp(v - mx));
          for (int e = 0; e < D; ++e) {
            double o = 0;
            for (int t = 0; t < N; ++t) o += sc[static_cast<size_t>(t)] / sum * qkv[static_cast<size_t>(t)][static_cast<size_t>(2 * HD + h * D + e)];
            ctx[static_cast<size_t>(i)][static_cast<size_t>(h * D + e)] = o;
          }
        }
      const Mat a = apply(bd.proj, ctx);
      for (int t = 0; t < N; ++t)
        for (int j = 0; j < C; ++j) x[static_cast<size_t>(t)][static_cast<size_t>(j)] += a[static_cast<size_t>(t)][static_cast<size_t>(j)];
    }
    if (!s.skip_mlp) {
      Mat h = apply(bd.fc1, ln(x, bd.norm2));
      for (auto& row : h)
        for (auto& v : row) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      const Mat o = apply(bd.fc2, h);
      for (int t = 0; t < N; ++t)
        for (int j = 0; j < C; ++j) x[static_cast<size_t>(t)][static_cast<size_t>(j)] += o[static_cast<size_t>(t)][static_cast<size_t>(j)];
    }
  }
  const Mat xn = ln(x, m.norm);
  const int pre = c.num_prefix_tokens();
  std::vector<double> pooled(static_cast<size_t>(C), 0.0);
  if (c.pool == "avg") {
    for (int t = pre; t < N; ++t)
      for (int j = 0; j < C; ++j) pooled[static_cast<size_t>(j)] += xn[static_cast<size_t>(t)][static_cast<size_t>(j)] / (N - pre);
  } else {
    pooled = xn[0];
  }
  std::vector<double> logits = apply({m.head}, {pooled})[0];
  if (c.distill_token) {
    const auto d = apply({m.head_dist}, {xn[1]})[0];
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = (logits[i] + d[i]) / 2;
  }
  return logits;
}

// A small config exercising every structural feature: per-block heads/MLP widths, skipped
// sub-blocks, low-rank factors, a shared block, the distillation token.
inline io::ViTConfig slimmed_config(bool distill = true, const std::string& pool = "token") {
  nlohmann::json j = {
      {"name", "slim"}, {"image_size", 12}, {"in_channels", 3}, {"patch_size", 3},
      {"embed_dim", 24}, {"depth", 5}, {"num_heads", 3}, {"mlp_dim", 40}, {"num_classes", 7},
      {"distill_token", distill}, {"pool", pool},
      {"blocks", {{{"num_heads", 2}, {"mlp_dim", 17}},
                  {{"skip_attn", true}, {"mlp_dim", 33}},
                  {{"num_heads", 1}, {"skip_mlp", true}},
                  {{"qkv_rank", 5}, {"fc2_rank", 3}},
                  {{"shared_with", 0}, {"num_heads", 2}, {"mlp_dim", 17}}}}};
  auto c = io::ViTConfig::from_json(j, "test config");
  c.normalize("test config");
  return c;
}

}  // namespace vitopt::runtime::testing
