// Fused attention for training: the value and gradients of softmax(q k^T * scale + key_bias) v
// without keeping the (B,H,N,N) probabilities for backward. Forward keeps only each row's
// logsumexp, from which backward rebuilds the probabilities. On the CPU each head runs whole on
// one thread in a (row block x N) workspace (fused_attention_heads.h); on other devices the
// FlashAttention-2 schedule runs as batched LibTorch ops on tiles (fused_attention_tiled.h).
// Working memory is O(threads*block*N) or O(B*H*tile*tile) on top of (B,H,N,D)-sized tensors,
// never O(B*H*N*N).
// Not twice differentiable (backward throws under create_graph).
// Legend: B batch, H heads, N tokens, D head dim; BH = B*H folded into one batch dimension.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vitopt::model {

// q, k, v: (B, H, N, D) float32 or float64, same dtype (any strides); q NOT yet scaled.
// key_bias: undefined, or (B, N) added to every score of key j (token merging's proportional
// attention log(size)); it receives no gradient. Differentiable in q, k and v (any subset).
// Returns (B, H, N, D) = softmax(q k^T * scale + key_bias[b, None, None, :]) v.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              double scale, const torch::Tensor& key_bias = {});

// Which attention the LibTorch model (vit.cpp) runs in a forward that records gradients
// (training, fine-tuning, QAT): "plain" (matmul, softmax, matmul: the (B,H,N,N) probabilities are
// kept for backward), "fused" (fused_attention), or "auto": fused from kFusedMinTokens tokens on.
// On the CPU the fused operator measured faster and leaner from ~57 tokens on (65 tokens: 1.3x,
// 197: 2-6x) and slower at 50 (vit-fmnist: 1.3x slower, the plain probabilities are small there);
// BENCHMARKS.md, "Fused attention in training". Forwards without gradients always run plain: they
// keep nothing. The default is $VITOPT_ATTENTION when set, else "auto". InputError on any other
// name.
inline constexpr int64_t kFusedMinTokens = 64;
void set_training_attention(const std::string& mode);
std::string training_attention();
bool use_fused_attention(int64_t tokens);  // for a forward that records gradients

// The tensors that the fused node behind `out` (a fused_attention result that requires grad)
// keeps for backward; empty when `out` has no such node. For tests and memory accounting.
std::vector<torch::Tensor> fused_attention_saved(const torch::Tensor& out);

namespace detail {
// For tests: run the device-generic tiled implementation on CPU tensors too (default off).
void use_tiled_fused_attention_on_cpu(bool on);
}  // namespace detail

}  // namespace vitopt::model
