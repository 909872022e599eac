// Pruner policy (Torch-Pruning's "how many, where"): turns group scores into the kept indices,
// ranking either within each block (per-layer ratios) or across all blocks (one global budget),
// with exact counts and the rule that a block never keeps zero heads/neurons (removing a whole
// branch is the `blocks` method's job).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vitopt::prune {

// scores[b]: (U_b) scores of block b's units (undefined: block has none). Returns the kept unit
// indices per block (ascending) after removing the `count` lowest scores across all blocks; a
// block's last unit is never removed (the next lowest elsewhere goes instead). Ties: lower block,
// then lower index, is removed first.
std::vector<std::vector<int>> keep_global(const std::vector<torch::Tensor>& scores, int64_t count);

// Per block: removes counts[b] lowest scores of block b (at most U_b - 1).
std::vector<std::vector<int>> keep_per_layer(const std::vector<torch::Tensor>& scores,
                                             const std::vector<int64_t>& counts);

// Sub-blocks: scores[i] for i = 2*b (attention of block b) and 2*b+1 (MLP); NaN = absent.
// Returns keep flags (false = remove) after removing the `count` lowest live ones; at least one
// sub-block always stays.
std::vector<bool> keep_subblocks(const std::vector<double>& scores, int64_t count);

// Cubic schedule (Zhu & Gupta): sparsity after pruning step k of K (1-based), from 0 to `target`:
// target * (1 - (1 - k/K)^3). k = K gives target exactly.
double cubic_sparsity(double target, int k, int K);

}  // namespace vitopt::prune
