// Token merging (ToMe, Bolya et al. 2023) on LibTorch tensors: bipartite soft matching between a
// block's attention and its MLP. Tokens alternate into two sets A (even positions) and B (odd);
// each A token's most similar B token (cosine of the keys averaged over heads) is its candidate,
// the r A tokens with the highest similarity merge into their candidates by a size-weighted
// average, and the sizes add. The prefix tokens (class, distillation, registers: positions below
// prefix_tokens) never merge: those in A merge into nothing, nothing merges into those in B.
// Output order: the prefix tokens in their order, then the other unmerged A tokens in order, then
// the other B tokens (with a class token only: the unmerged A tokens, then every B token, as in
// ToMe). The runtime (src/runtime/token_merge.cpp) implements the same rule on raw buffers.
// Legend: B batch, N tokens, D head dim, C embed dim, r tokens merged away.
#pragma once

#include <torch/torch.h>

namespace vitopt::model {

// Which tokens merge where, per image (indices into A and B, int64).
struct TokenMatch {
  torch::Tensor unmerged;  // (B, |A| - r) A indices kept, ascending
  torch::Tensor src;       // (B, r) A indices merged away
  torch::Tensor dst;       // (B, r) the B index each of them merges into
  int64_t prefix_tokens = 1;
};

// The matching for `metric` (B, N, D) (keys averaged over heads); r must be at most
// (N - prefix_tokens) / 2 (ViTConfig::merge_at caps it). Computed without gradient.
TokenMatch bipartite_soft_matching(const torch::Tensor& metric, int64_t r, int64_t prefix_tokens);

// Sums tokens (B, N, C) as the match says: merged A tokens are added into their B token.
torch::Tensor merge_sum(const TokenMatch& m, const torch::Tensor& x);

// Size-weighted merge of x (B, N, C) with token sizes (B, N, 1) (undefined: every size 1):
// returns {x', sizes'} with x' = sum(size * x) / sum(size) per merged group, sizes' = sum(size).
std::pair<torch::Tensor, torch::Tensor> merge_weighted(const TokenMatch& m, const torch::Tensor& x,
                                                       const torch::Tensor& sizes);

}  // namespace vitopt::model
