// Attention with quantized matmul inputs (extras.attention, docs/model-format.md): q (scaled by
// D^-1/2), k and v fake-quantized with their static per-block quantizers, softmax in fp32, the
// probabilities coded uniform or log2, then p̂·v̂. The exact arithmetic of the format computed in
// fp32, per (image, head), two passes over the keys; it is not the fused online-softmax kernel
// (the probabilities must be normalised before they are coded), so it runs at scalar speed.
// Legend: N tokens, D head dim, H heads.
#pragma once

#include "runtime/quant_spec.h"

namespace vitopt::runtime {

struct AttentionQuantOp {
  InputQuant q, k, v;
  int prob_bits = 8;
  bool prob_log2 = false;
};

// A probability's coded value: uniform rne(p (2^b-1)) / (2^b-1); log2 c = rne(-log2 p),
// 2^-c when c <= 2^b - 2, else 0.
float quantize_prob(float p, int bits, bool log2);

// ctx rows of image b, head h: qkv is (B*N, ldqkv) with q at column h*D, k at H*D + h*D and v at
// 2*H*D + h*D; ctx is (B*N, ldctx) with the head's output at column h*D.
void quantized_attention(const AttentionQuantOp& op, const float* qkv, int ldqkv, int tokens,
                         int heads, int head_dim, int b, int h, float* ctx, int ldctx);

}  // namespace vitopt::runtime
