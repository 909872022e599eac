// Unstructured and N:M (semi-structured) masks over the prunable Linear weights: per-layer or
// one global ranking of per-weight scores, exact counts (ties broken by position), N:M groups of
// M consecutive inputs per output row, applying masks through LinearImpl::set_mask, and sparsity
// stats. Where the scores come from (magnitude, sensitivity...) is the importance registry's job.
#pragma once

#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "model/vit.h"

namespace vitopt::edit {

// Linear name (e.g. "blocks.0.attn.qkv") -> tensor of its weight's shape (out, in).
using TensorMap = std::map<std::string, torch::Tensor>;

// Masks (1 keep, 0 prune) that remove exactly round(sparsity * n) weights with the lowest scores
// of each layer (per_layer) or of all layers together (global). Equal scores: the earlier
// position (layer order, then row-major) is pruned first, so the count is always exact.
TensorMap masks_per_layer(const TensorMap& scores, double sparsity);
TensorMap masks_global(const TensorMap& scores, double sparsity);
// N:M: in every group of M consecutive weights of a row, the N highest scores are kept.
// Throws InputError if a layer's input width is not a multiple of M.
TensorMap masks_nm(const TensorMap& scores, int n, int m);

// Sets every mask on its Linear (model::LinearImpl::set_mask zeroes the pruned weights).
void apply_masks(model::ViT& model, const TensorMap& masks);
// Re-zeroes masked weights of every Linear that has a mask (after an optimizer step).
void reapply_masks(model::ViT& model);

// Zero weights among the prunable Linears, overall and per layer:
// {"zeros", "total", "sparsity", "layers": [{"name", "zeros", "total", "sparsity"}]}.
nlohmann::json sparsity_stats(model::ViT& model);

}  // namespace vitopt::edit
