// Low-rank factorization primitives: the best rank-r factors of a weight (truncated SVD, the
// singular values split evenly between the factors) and replacing Linears of a model by factor
// pairs at given ranks. Choosing the ranks (energy, budget, activation-aware scaling) is the
// factorize method's policy, not this layer's.
// Legend: out/in a Linear's output/input width, r rank.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "model/vit.h"

namespace vitopt::edit {

// U (out, r) = U_r sqrt(S_r), V (r, in) = sqrt(S_r) V_r^T from W (out, in) = U S V^T, so U V is
// the best rank-r approximation of W (Eckart-Young); r = min(out, in) reproduces W.
// Throws InputError for r < 1 or r > min(out, in).
std::pair<torch::Tensor, torch::Tensor> low_rank_factors(const torch::Tensor& weight, int64_t rank);

// Ranks of one block's Linears (0: dense).
struct BlockRanks {
  int qkv = 0, proj = 0, fc1 = 0, fc2 = 0;
  bool operator==(const BlockRanks&) const = default;
};
std::vector<BlockRanks> model_ranks(const io::ViTConfig& config);

// A new model whose Linears have the given ranks (one entry per block), every other weight copied;
// a Linear at full rank computes what the dense one did. The source model is unchanged.
model::ViT factorize(model::ViT& model, const std::vector<BlockRanks>& ranks);

}  // namespace vitopt::edit
