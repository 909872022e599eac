// Shared helpers for the runtime tests: kernel levels this CPU runs, random data, and an
// independent naive ViT forward in double precision over the loader's plain arrays (the oracle
// the engine is checked against without LibTorch).
#pragma once

#include <algorithm>
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

// ToMe on one image's tokens in double precision, written from the rule rather than from the
// runtime's code: keys (N, H*D) averaged over heads and normalised; A = even positions, B = odd;
// tokens [0, prefix) never merge and take no merges; each A token's best B is its first most
// similar unprotected one; the r A tokens of highest best similarity (stable order) merge into
// theirs as size-weighted averages. Output: prefix tokens, the kept A tokens, the B tokens.
inline void naive_merge(std::vector<std::vector<double>>& x, std::vector<double>& sizes,
                        const std::vector<std::vector<double>>& keys, int heads, int head_dim,
                        int prefix, int r) {
  const int n = static_cast<int>(x.size());
  std::vector<std::vector<double>> metric(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) {
    std::vector<double> u(static_cast<size_t>(head_dim), 0.0);
    for (int h = 0; h < heads; ++h)
      for (int d = 0; d < head_dim; ++d)
        u[static_cast<size_t>(d)] +=
            keys[static_cast<size_t>(t)][static_cast<size_t>(h * head_dim + d)] / heads;
    double norm = 0;
    for (double v : u) norm += v * v;
    for (double& v : u) v /= std::sqrt(norm);
    metric[static_cast<size_t>(t)] = u;
  }
  struct Cand {
    int a, b;  // token positions
    double score;
  };
  std::vector<Cand> cands;  // unprotected A tokens in position order
  for (int a = 0; a < n; a += 2) {
    if (a < prefix) continue;
    Cand c{a, -1, -1e300};
    for (int b = 1; b < n; b += 2) {
      if (b < prefix) continue;
      double dot = 0;
      for (int d = 0; d < head_dim; ++d)
        dot += metric[static_cast<size_t>(a)][static_cast<size_t>(d)] *
               metric[static_cast<size_t>(b)][static_cast<size_t>(d)];
      if (c.b < 0 || dot > c.score) c = {a, b, dot};
    }
    cands.push_back(c);
  }
  std::stable_sort(cands.begin(), cands.end(),
                   [](const Cand& p, const Cand& q) { return p.score > q.score; });
  std::vector<int> into(static_cast<size_t>(n), -1);  // merged A token -> its B token
  for (int e = 0; e < r; ++e)
    into[static_cast<size_t>(cands[static_cast<size_t>(e)].a)] = cands[static_cast<size_t>(e)].b;
  std::vector<std::vector<double>> out;
  std::vector<double> out_sizes;
  auto emit = [&](int t) {
    std::vector<double> sum = x[static_cast<size_t>(t)];
    double size = sizes[static_cast<size_t>(t)];
    for (double& v : sum) v *= size;
    for (int a = 0; a < n; ++a) {
      if (into[static_cast<size_t>(a)] != t) continue;
      for (size_t j = 0; j < sum.size(); ++j)
        sum[j] += x[static_cast<size_t>(a)][j] * sizes[static_cast<size_t>(a)];
      size += sizes[static_cast<size_t>(a)];
    }
    for (double& v : sum) v /= size;
    out.push_back(sum);
    out_sizes.push_back(size);
  };
  for (int t = 0; t < prefix; ++t) emit(t);
  for (int a = 0; a < n; a += 2)
    if (a >= prefix && into[static_cast<size_t>(a)] < 0) emit(a);
  for (int b = 1; b < n; b += 2)
    if (b >= prefix) emit(b);
  x = out;
  sizes = out_sizes;
}

// One image through the model in double precision (inputs fake-quantized where the file says),
// timm's VisionTransformer: every prefix-token layout (class token or none, distillation token,
// registers, pos_embed on the patches only), the final norm on every token or on the pooled
// features (fc_norm), and token merging with proportional attention as the config's merge_r say.
inline std::vector<double> naive_forward(const LoadedModel& m, const float* image) {
  const io::ViTConfig& c = m.config;
  const int C = c.embed_dim, P = c.patch_size, G = c.grid(), D = c.head_dim;
  const int pre = c.num_prefix_tokens();
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
  // A Linear plus, when it shares weights with a delta, the delta's product on the same input.
  auto linear = [&](const std::vector<LinearData>& f, const std::vector<LinearData>& delta,
                    const Mat& x) {
    Mat y = apply(f, x);
    if (delta.empty()) return y;
    const Mat d = apply(delta, x);
    for (size_t r = 0; r < y.size(); ++r)
      for (size_t o = 0; o < y[r].size(); ++o) y[r][o] += d[r][o];
    return y;
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
  Mat emb = apply({m.patch}, patches);
  auto add_pos = [&](std::vector<double>& row, int pos_row) {
    for (int j = 0; j < C; ++j)
      row[static_cast<size_t>(j)] += m.pos_embed[static_cast<size_t>(pos_row * C + j)];
  };
  if (c.no_embed_class)  // pos_embed (Np, C) on the patches before the prefix tokens join
    for (size_t p = 0; p < emb.size(); ++p) add_pos(emb[p], static_cast<int>(p));
  Mat x;
  if (c.class_token) x.emplace_back(m.cls_token.begin(), m.cls_token.end());
  if (c.distill_token) x.emplace_back(m.dist_token.begin(), m.dist_token.end());
  for (int i = 0; i < c.reg_tokens; ++i)
    x.emplace_back(m.reg_token.begin() + i * C, m.reg_token.begin() + (i + 1) * C);
  for (const auto& e : emb) x.push_back(e);
  if (!c.no_embed_class)
    for (size_t t = 0; t < x.size(); ++t) add_pos(x[t], static_cast<int>(t));
  std::vector<double> sizes(x.size(), 1.0);  // tokens each row stands for (token merging)
  for (int b = 0; b < c.depth; ++b) {
    const io::BlockConfig& s = c.blocks[static_cast<size_t>(b)];
    const BlockData& bd = m.blocks[static_cast<size_t>(b)];
    const int N = static_cast<int>(x.size());
    if (!s.skip_attn) {
      const int H = s.num_heads, HD = H * D;
      const Mat qkv = linear(bd.qkv, bd.qkv_delta, ln(x, bd.norm1));
      Mat ctx(static_cast<size_t>(N), std::vector<double>(static_cast<size_t>(HD)));
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < N; ++i) {
          std::vector<double> sc(static_cast<size_t>(N));
          double mx = -1e300;
          for (int t = 0; t < N; ++t) {
            double d = 0;
            for (int e = 0; e < D; ++e) d += qkv[static_cast<size_t>(i)][static_cast<size_t>(h * D + e)] * qkv[static_cast<size_t>(t)][static_cast<size_t>(HD + h * D + e)];
            // Proportional attention: log(size) per key (0 before any merge).
            sc[static_cast<size_t>(t)] =
                d / std::sqrt(static_cast<double>(D)) + std::log(sizes[static_cast<size_t>(t)]);
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
      const Mat a = linear(bd.proj, bd.proj_delta, ctx);
      for (int t = 0; t < N; ++t)
        for (int j = 0; j < C; ++j) x[static_cast<size_t>(t)][static_cast<size_t>(j)] += a[static_cast<size_t>(t)][static_cast<size_t>(j)];
      if (const int r = c.merge_at(b, N); r > 0) {
        Mat keys;
        for (const auto& row : qkv) keys.emplace_back(row.begin() + HD, row.begin() + 2 * HD);
        naive_merge(x, sizes, keys, H, D, pre, r);
      }
    }
    if (!s.skip_mlp) {
      Mat h = linear(bd.fc1, bd.fc1_delta, ln(x, bd.norm2));
      for (auto& row : h)
        for (auto& v : row) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      const Mat o = linear(bd.fc2, bd.fc2_delta, h);
      for (size_t t = 0; t < x.size(); ++t)
        for (int j = 0; j < C; ++j) x[t][static_cast<size_t>(j)] += o[t][static_cast<size_t>(j)];
    }
  }
  // The final norm on every token, or (fc_norm) on the pooled features only.
  const Mat xn = c.fc_norm ? x : ln(x, m.norm);
  std::vector<double> pooled(static_cast<size_t>(C), 0.0);
  if (c.pool == "avg") {
    double total = 0;
    for (size_t t = static_cast<size_t>(pre); t < xn.size(); ++t) total += sizes[t];
    for (size_t t = static_cast<size_t>(pre); t < xn.size(); ++t)
      for (int j = 0; j < C; ++j)
        pooled[static_cast<size_t>(j)] += xn[t][static_cast<size_t>(j)] * sizes[t] / total;
  } else {
    pooled = xn[0];
  }
  if (c.fc_norm) pooled = ln({pooled}, m.norm)[0];
  std::vector<double> logits = apply({m.head}, {pooled})[0];
  if (c.distill_token) {  // token 1 through the same final LayerNorm, wherever the layout has it
    const auto d = apply({m.head_dist}, ln({x[1]}, m.norm))[0];
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = (logits[i] + d[i]) / 2;
  }
  return logits;
}

// A small config exercising every structural feature: per-block heads/MLP widths, skipped
// sub-blocks, low-rank factors, a shared block, the distillation token.
inline io::ViTConfig slimmed_config(bool distill = true, const std::string& pool = "token") {
  nlohmann::json j = {{"name", "slim"},
                      {"image_size", 12},
                      {"in_channels", 3},
                      {"patch_size", 3},
                      {"embed_dim", 24},
                      {"depth", 5},
                      {"num_heads", 3},
                      {"mlp_dim", 40},
                      {"num_classes", 7},
                      {"distill_token", distill},
                      {"pool", pool},
                      {"blocks",
                       {{{"num_heads", 2}, {"mlp_dim", 17}},
                        {{"skip_attn", true}, {"mlp_dim", 33}},
                        {{"num_heads", 1}, {"skip_mlp", true}},
                        {{"qkv_rank", 5}, {"fc2_rank", 3}},
                        {{"attn_shared_with", 0},
                         {"mlp_shared_with", 0},
                         {"delta_rank", 2},
                         {"num_heads", 2},
                         {"mlp_dim", 17}}}}};
  auto c = io::ViTConfig::from_json(j, "test config");
  c.normalize("test config");
  return c;
}

}  // namespace vitopt::runtime::testing
