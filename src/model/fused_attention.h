// Fused attention for training (FlashAttention-2 style, LibTorch ops on tiles): the value and
// gradients of softmax(q k^T * scale + key_bias) v without ever materializing the (B,H,N,N)
// probabilities. Forward walks query tiles x key tiles with an online softmax and keeps only the
// per-row logsumexp for backward, which recomputes the probabilities tile by tile. Working
// memory per call is O(B*H*tile*tile) on top of (B,H,N,D)-sized tensors, never O(B*H*N*N).
// Not twice differentiable (backward throws under create_graph).
// Legend: B batch, H heads, N tokens, D head dim; BH = B*H folded into one batch dimension.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vitopt::model {

// Largest tiles along N for queries and keys; N is split into equal-as-possible tiles of at most
// this many rows (197 -> 99 + 98). 128 bounds a score tile at BH x 128 x 128 (12.5 MiB at
// BH = 192, float32) while keeping the tile GEMMs large enough: LibTorch's CPU bmm runs one GEMM
// per matrix, so 64-row tiles (16 tile pairs at N = 197 instead of 4) measured slower.
inline constexpr int64_t kFusedQueryTile = 128;
inline constexpr int64_t kFusedKeyTile = 128;

// q, k, v: (B, H, N, D) float32 or float64, same dtype (any strides); q NOT yet scaled.
// key_bias: undefined, or (B, N) added to every score of key j (token merging's proportional
// attention log(size)); it receives no gradient. Differentiable in q, k and v (any subset).
// Returns (B, H, N, D) = softmax(q k^T * scale + key_bias[b, None, None, :]) v.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              double scale, const torch::Tensor& key_bias = {});

// Which attention the LibTorch model (vit.cpp) runs in a forward that records gradients
// (training, fine-tuning, QAT): "plain" (matmul, softmax, matmul: the (B,H,N,N) probabilities are
// kept for backward), "fused" (fused_attention), or "auto": fused from kFusedMinTokens tokens on,
// where the kept probabilities dominate a step's memory (BENCHMARKS.md, "Fused attention in
// training"). Forwards without gradients always run plain: they keep nothing. The default is
// $VITOPT_ATTENTION when set, else "auto". InputError on any other name.
inline constexpr int64_t kFusedMinTokens = 128;
void set_training_attention(const std::string& mode);
std::string training_attention();
bool use_fused_attention(int64_t tokens);  // for a forward that records gradients

// The tensors that the fused node behind `out` (a fused_attention result that requires grad)
// keeps for backward; empty when `out` has no such node. For tests and memory accounting.
std::vector<torch::Tensor> fused_attention_saved(const torch::Tensor& out);

}  // namespace vitopt::model
