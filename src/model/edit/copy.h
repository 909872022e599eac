// Copying a ViT's weights into a model of the same or an edited config: the one deep copy of a
// model (parameters, buffers such as pruning masks; no hooks), and `rebuild`, which carries every
// weight over by name into a model built from an edited config (new ranks: the Linear is
// re-factorized; new sharing: the owner's weights are kept). Slimming (index selection) is slim.h.
#pragma once

#include <torch/torch.h>

#include "model/vit.h"

namespace vitopt::edit {

// A deep copy: same config, copied parameters and buffers (masks included), no hooks, same mode.
model::ViT copy_model(model::ViT& model);

// A model built from `config` with `src`'s weights, matched by name: equal shapes are copied; a
// Linear whose rank changed gets the best factors of `src`'s weight at the new rank (SVD, see
// factor.h) or, turned dense, the product of `src`'s factors. Blocks that share in `config` take
// their owner's weights. Throws InternalError when a tensor has no source of the right shape
// (the configs differ in more than ranks and sharing).
model::ViT rebuild(model::ViT& src, const io::ViTConfig& config);

// The weight a Linear multiplies by without hooks: the factors multiplied out for a low-rank
// layer, the mask applied. (out, in)
torch::Tensor plain_weight(const model::LinearImpl& linear);

}  // namespace vitopt::edit
