// Quantized-input attention (see attention_quant.h). Operation order follows the LibTorch
// simulation (model/attention_quant.cpp): q * float(D^-1/2) before its quantizer, max-subtracted
// exp, multiplication by 1/sum, then the probability code.
#include "runtime/attention_quant.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime {
namespace {

float fake_quant(float x, const InputQuant& q) {
  const int code = kernels::quantize_value(x, q.scale, q.zero_point, q.qmin(), q.qmax());
  return q.scale * static_cast<float>(code - q.zero_point);
}

}  // namespace

float quantize_prob(float p, int bits, bool log2) {
  const float levels = static_cast<float>((1 << bits) - 1);
  if (!log2) return std::nearbyint(p * levels) / levels;
  const float c = std::max(std::nearbyint(-std::log2(p)), 0.0f);  // p = 0: +inf
  return c <= levels - 1 ? std::exp2(-c) : 0.0f;
}

void quantized_attention(const AttentionQuantOp& op, const float* qkv, int ldqkv, int tokens,
                         int heads, int head_dim, int b, int h, float* ctx, int ldctx) {
  const int N = tokens, D = head_dim, HD = heads * head_dim;
  const float scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));
  // Per-thread scratch, grown once: k̂, v̂ (N, D), one row of scores (N) and q̂ (D).
  thread_local std::vector<float> kq, vq, s, qhat;
  kq.resize(static_cast<size_t>(N) * static_cast<size_t>(D));
  vq.resize(kq.size());
  s.resize(static_cast<size_t>(N));
  qhat.resize(static_cast<size_t>(D));
  auto row = [&](int t) { return qkv + (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) * static_cast<size_t>(ldqkv); };
  for (int j = 0; j < N; ++j)
    for (int d = 0; d < D; ++d) {
      kq[static_cast<size_t>(j * D + d)] = fake_quant(row(j)[HD + h * D + d], op.k);
      vq[static_cast<size_t>(j * D + d)] = fake_quant(row(j)[2 * HD + h * D + d], op.v);
    }
  for (int t = 0; t < N; ++t) {
    for (int d = 0; d < D; ++d) qhat[static_cast<size_t>(d)] = fake_quant(row(t)[h * D + d] * scale, op.q);
    float mx = -INFINITY;
    for (int j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int d = 0; d < D; ++d) acc += qhat[static_cast<size_t>(d)] * kq[static_cast<size_t>(j * D + d)];
      s[static_cast<size_t>(j)] = acc;
      mx = std::max(mx, acc);
    }
    float sum = 0.0f;
    for (int j = 0; j < N; ++j) sum += (s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx));
    const float inv = 1.0f / sum;
    for (int j = 0; j < N; ++j)
      s[static_cast<size_t>(j)] = quantize_prob(s[static_cast<size_t>(j)] * inv, op.prob_bits, op.prob_log2);
    float* out = ctx + (static_cast<size_t>(b) * static_cast<size_t>(N) + static_cast<size_t>(t)) * static_cast<size_t>(ldctx) + static_cast<size_t>(h * D);
    for (int d = 0; d < D; ++d) out[d] = 0.0f;
    for (int j = 0; j < N; ++j) {
      const float p = s[static_cast<size_t>(j)];
      if (p == 0.0f) continue;
      for (int d = 0; d < D; ++d) out[d] += p * vq[static_cast<size_t>(j * D + d)];
    }
  }
}

}  // namespace vitopt::runtime
