// Fused attention on any device, as batched LibTorch ops (FlashAttention-2 schedule): forward
// tiles queries x keys with an online softmax and keeps only the per-row logsumexp; backward
// rebuilds each probability tile from it. Every op works on all BH heads of one tile pair at
// once, so the per-op overhead is paid per tile pair, not per head. model::fused_attention uses
// it off the CPU; on the CPU the per-head kernels (fused_attention_heads.h) measured faster.
// Legend: BH = batch x heads folded, N tokens, D head dim, tq/tk rows of a query/key tile.
#pragma once

#include <torch/torch.h>

namespace vitopt::model::detail {

// qs (q * scale), k, v: (BH, N, D) contiguous; bias: (BH, 1, N) or undefined. Writes out
// (BH, N, D) and lse (BH, N), each row's logsumexp of the scores.
void tiled_forward(const torch::Tensor& out, const torch::Tensor& lse, const torch::Tensor& qs,
                   const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias);

// The gradients' (BH, N, D) outputs to fill; undefined where not asked for.
struct AttentionGrads {
  torch::Tensor dq, dk, dv;
};

// Backward from the forward's inputs, out, lse and the upstream dout (BH, N, D). dq comes
// without the factor `scale` folded into qs: the caller applies it.
void tiled_backward(const torch::Tensor& qs, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& bias, const torch::Tensor& out, const torch::Tensor& lse,
                    const torch::Tensor& dout, const AttentionGrads& g);

}  // namespace vitopt::model::detail
