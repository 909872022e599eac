// Importance (Torch-Pruning's "how much does this group matter"): per-weight scores for
// unstructured pruning (magnitude lives in masks.h; first-order sensitivity |w * dL/dw| here) and
// per-group scores for heads, MLP neurons and whole sub-blocks by three criteria: L2 of the
// coupled weights, first-order Taylor |dL/dgate| through the Trace gates, and the measured loss
// increase when the group is removed. Calibration batches come from the training split.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "compress/prune/masks.h"
#include "model/vit.h"

namespace vitopt::prune {

struct CalibBatch {
  torch::Tensor x;  // (B, C, H, W) normalized
  torch::Tensor y;  // (B) int64
};

// The first `images` images of the training split (eval transform), in batches of `batch`.
std::vector<CalibBatch> load_calibration(const std::string& data, const io::ViTConfig& config,
                                         size_t images, int64_t batch, uint64_t seed);

// Sum over calibration batches of |w * dL/dw| for every prunable Linear weight (out, in).
TensorMap sensitivity_scores(model::ViT& model, const std::vector<CalibBatch>& calib);

enum class Criterion { L2, Taylor, Loss };
Criterion parse_criterion(const std::string& name);  // "l2" | "taylor" | "loss"
std::string criterion_name(Criterion c);

// Per-block group scores (higher = more important). heads[b] (H_b), neurons[b] (M_b): undefined
// where the sub-block is absent or that kind was not asked for; attn[b] / mlp[b]: NaN likewise.
struct GroupScores {
  std::vector<torch::Tensor> heads, neurons;
  std::vector<double> attn, mlp;
};
struct ScoreKinds {
  bool heads = false, neurons = false, subblocks = false;
};
GroupScores group_scores(model::ViT& model, Criterion criterion, ScoreKinds kinds,
                         const std::vector<CalibBatch>& calib, bool quiet = true);

// Mean cross-entropy of the model on the calibration batches, optionally through a trace
// (gates applied). No gradients.
double calibration_loss(model::ViT& model, const std::vector<CalibBatch>& calib,
                        model::Trace* trace = nullptr);

}  // namespace vitopt::prune
