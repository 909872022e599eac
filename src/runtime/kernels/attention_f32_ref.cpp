// Attention, scalar reference: for each query row, scores against every key, a plain max-shifted
// softmax, then the probability-weighted sum of values (timm's numerics: q is scaled first).
// Reads q, k, v straight from the qkv output (ignores the transposed keys the SIMD versions use).
// Also the quantized-input attention (extras.attention) and its probability codes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

void attention(const AttentionArgs& a, int b, int h, int i0, int rows) {
  const int D = a.head_dim, HD = a.heads * D;
  const auto row = [&](int t, int which) {  // (B, N, 3, H, D) -> pointer to one head vector
    return a.qkv + (static_cast<size_t>(b) * static_cast<size_t>(a.tokens) + static_cast<size_t>(t)) *
                       static_cast<size_t>(a.ldqkv) +
           static_cast<size_t>(which * HD + h * D);
  };
  std::vector<float> q(static_cast<size_t>(D)), p(static_cast<size_t>(a.tokens));
  for (int i = i0; i < i0 + rows; ++i) {
    const float* qi = row(i, 0);
    for (int d = 0; d < D; ++d) q[static_cast<size_t>(d)] = qi[d] * a.scale;
    float mx = -INFINITY;
    const float* kb = a.key_bias == nullptr
                          ? nullptr
                          : a.key_bias + static_cast<size_t>(b) * static_cast<size_t>(a.bias_ld);
    for (int t = 0; t < a.tokens; ++t) {
      const float* kt = row(t, 1);
      float s = 0.0f;
      for (int d = 0; d < D; ++d) s += q[static_cast<size_t>(d)] * kt[d];
      if (kb != nullptr) s += kb[t];  // proportional attention (token merging)
      p[static_cast<size_t>(t)] = s;
      mx = std::max(mx, s);
    }
    float sum = 0.0f;
    for (int t = 0; t < a.tokens; ++t) {
      p[static_cast<size_t>(t)] = std::exp(p[static_cast<size_t>(t)] - mx);
      sum += p[static_cast<size_t>(t)];
    }
    float* out = a.ctx + (static_cast<size_t>(b) * static_cast<size_t>(a.tokens) + static_cast<size_t>(i)) *
                             static_cast<size_t>(a.ldctx) +
                 static_cast<size_t>(h * D);
    for (int d = 0; d < D; ++d) out[d] = 0.0f;
    for (int t = 0; t < a.tokens; ++t) {
      const float w = p[static_cast<size_t>(t)] / sum;
      const float* vt = row(t, 2);
      for (int d = 0; d < D; ++d) out[d] += w * vt[d];
    }
  }
}

float fake_quant(float x, const ActQuant& q) {
  const int code = quantize_value(x, q.scale, q.zero_point, q.qmin, q.qmax);
  return q.scale * static_cast<float>(code - q.zero_point);
}

// Quantized-input attention in the operation order of the LibTorch simulation
// (model/attention_quant.cpp): q * scale before its quantizer, max-subtracted exp, multiplication
// by 1/sum, then the probability code; two passes over the keys per query row.
void attention_q(const AttentionQuantArgs& a, int task) {
  const int N = a.tokens, D = a.head_dim, HD = a.heads * D, b = task / a.heads, h = task % a.heads;
  const size_t uD = static_cast<size_t>(D);
  std::vector<float> kq(static_cast<size_t>(N) * uD), vq(kq.size()), s(static_cast<size_t>(N)), qhat(uD);
  auto row = [&](int t) {
    return a.qkv + (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) *
                       static_cast<size_t>(a.ldqkv);
  };
  for (int j = 0; j < N; ++j)
    for (int d = 0; d < D; ++d) {
      kq[static_cast<size_t>(j) * uD + static_cast<size_t>(d)] = fake_quant(row(j)[HD + h * D + d], a.k);
      vq[static_cast<size_t>(j) * uD + static_cast<size_t>(d)] = fake_quant(row(j)[2 * HD + h * D + d], a.v);
    }
  for (int t = 0; t < N; ++t) {
    for (int d = 0; d < D; ++d) qhat[static_cast<size_t>(d)] = fake_quant(row(t)[h * D + d] * a.scale, a.q);
    float mx = -INFINITY;
    const float* kb = a.key_bias == nullptr
                          ? nullptr
                          : a.key_bias + static_cast<size_t>(b) * static_cast<size_t>(a.bias_ld);
    for (int j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int d = 0; d < D; ++d) acc += qhat[static_cast<size_t>(d)] * kq[static_cast<size_t>(j) * uD + static_cast<size_t>(d)];
      if (kb != nullptr) acc += kb[j];
      s[static_cast<size_t>(j)] = acc;
      mx = std::max(mx, acc);
    }
    float sum = 0.0f;
    for (int j = 0; j < N; ++j) sum += (s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx));
    const float inv = 1.0f / sum;
    for (int j = 0; j < N; ++j)
      s[static_cast<size_t>(j)] = quantize_prob(s[static_cast<size_t>(j)] * inv, a.prob_bits, a.prob_log2);
    float* out = a.ctx + (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) *
                             static_cast<size_t>(a.ldctx) + static_cast<size_t>(h * D);
    for (int d = 0; d < D; ++d) out[d] = 0.0f;
    for (int j = 0; j < N; ++j) {
      const float p = s[static_cast<size_t>(j)];
      for (int d = 0; d < D; ++d) out[d] += p * vq[static_cast<size_t>(j) * uD + static_cast<size_t>(d)];
    }
  }
}

}  // namespace

float quantize_prob(float p, int bits, bool log2) {
  const float levels = static_cast<float>((1 << bits) - 1);
  if (!log2) return std::nearbyint(p * levels) / levels;
  const float c = std::max(std::nearbyint(-std::log2(p)), 0.0f);  // p = 0: +inf
  return c <= levels - 1 ? std::exp2(-c) : 0.0f;
}

void fill_attention_f32_ref(KernelTable& t) {
  t.attention = attention;
  t.attention_q = attention_q;
}

}  // namespace vitopt::runtime::kernels
