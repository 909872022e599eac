// Attention, scalar reference: for each query row, scores against every key, a plain max-shifted
// softmax, then the probability-weighted sum of values (timm's numerics: q is scaled first).
// Reads q, k, v straight from the qkv output (ignores the transposed keys the SIMD versions use).
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

void attention(const AttentionArgs& a, int task) {
  const int blocks = (a.tokens + kAttnRows - 1) / kAttnRows;
  const int qb = task % blocks, bh = task / blocks, h = bh % a.heads, b = bh / a.heads;
  const int D = a.head_dim, HD = a.heads * D;
  const auto row = [&](int t, int which) {  // (B, N, 3, H, D) -> pointer to one head vector
    return a.qkv + (static_cast<size_t>(b) * static_cast<size_t>(a.tokens) + static_cast<size_t>(t)) *
                       static_cast<size_t>(a.ldqkv) +
           static_cast<size_t>(which * HD + h * D);
  };
  std::vector<float> q(static_cast<size_t>(D)), p(static_cast<size_t>(a.tokens));
  const int i1 = std::min(a.tokens, (qb + 1) * kAttnRows);
  for (int i = qb * kAttnRows; i < i1; ++i) {
    const float* qi = row(i, 0);
    for (int d = 0; d < D; ++d) q[static_cast<size_t>(d)] = qi[d] * a.scale;
    float mx = -INFINITY;
    for (int t = 0; t < a.tokens; ++t) {
      const float* kt = row(t, 1);
      float s = 0.0f;
      for (int d = 0; d < D; ++d) s += q[static_cast<size_t>(d)] * kt[d];
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

}  // namespace

void fill_attention_f32_ref(KernelTable& t) { t.attention = attention; }

}  // namespace vitopt::runtime::kernels
