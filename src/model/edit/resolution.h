// Changing a model's input resolution: the same patch size over a grid of image_size / patch
// patches per side, so every weight keeps its shape except the position embeddings, whose patch
// grid is resampled (bicubic, antialiased when shrinking, as timm's resample_abs_pos_embed) while
// the class / distillation tokens' embeddings are kept. A structure edit like slimming: the
// architecture search uses it for its input-resolution gene.
// Legend: N tokens, C embed dim, g patches per side.
#pragma once

#include <torch/torch.h>

#include "model/vit.h"

namespace vitopt::edit {

// pos (1, prefix + g*g, C) -> (1, prefix + new_grid^2, C). new_grid == g returns pos unchanged.
torch::Tensor resample_pos_embed(const torch::Tensor& pos, int prefix, int new_grid);

// A model like `src` (every other weight and buffer copied, same mode) taking image_size x
// image_size inputs. InputError when the patch size does not divide image_size.
model::ViT resize_input(model::ViT& src, int image_size);

}  // namespace vitopt::edit
