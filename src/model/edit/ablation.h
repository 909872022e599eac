// Mean ablation: the mean output of every head, MLP neuron and sub-block over a set of images
// (and over tokens, so that a removed part's constant output can live in a bias), the trace
// settings that make a forward replace removed parts by their means, and folding those means into
// the next bias of a slimmed model (proj, fc2, or the residual stream's previous writer), so the
// slimmed model computes exactly what the ablated one did. Used by slim.h; circuits build on it.
// Legend: B batch, N tokens, C embed dim, H heads, D head dim, M MLP width.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "model/edit/plan.h"
#include "model/vit.h"

namespace vitopt::edit {

// Means over images and tokens of the clean (un-ablated) model; undefined where a sub-block is
// absent. One entry per block.
struct AblationMeans {
  std::vector<torch::Tensor> heads;    // (H_b, D): per-head attention context before proj
  std::vector<torch::Tensor> neurons;  // (M_b): post-GELU MLP activations
  std::vector<torch::Tensor> attn;     // (C): attention sub-block output (after proj)
  std::vector<torch::Tensor> mlp;      // (C): MLP sub-block output (after fc2)
};

// One traced pass over `batches` (each (B, C_in, H, W), normalized). No gradients; the model's
// mode is restored. Throws InputError if there are no images.
AblationMeans measure_means(model::ViT& model, const std::vector<torch::Tensor>& batches);

// Copies the means into the trace, so that its gates mean-ablate instead of zeroing.
void set_ablation_means(model::Trace& trace, const AblationMeans& means);

// Adds what the parts `plan` removes from `src` contribute on average to the biases of `dst`, the
// model slim() built from `src` and `plan`: removed heads' W_proj[:, h] @ mean_h into proj's bias,
// removed neurons' W_fc2[:, j] * mean_j into fc2's bias, and a removed sub-block's mean output into
// the bias of the previous live writer of the residual stream (proj or fc2 of an earlier branch,
// or the position embedding).
void fold_means(model::ViT& src, model::ViT& dst, const StructurePlan& plan,
                const AblationMeans& means);

}  // namespace vitopt::edit
