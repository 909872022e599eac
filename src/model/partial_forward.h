// The ViT's forward in pieces, for methods that rerun only part of it (measured-loss importance,
// circuit discovery): the token embedding alone, and the logits from a block's input onward.
// ViTImpl::forward_features uses embed_tokens too, so the pieces are the forward's own code.
// Legend: B batch, N tokens, C embed dim, K classes.
#pragma once

#include <torch/torch.h>

#include "model/vit.h"

namespace vitopt::model {

// Patch embedding, class (and distillation) token, position embedding: (B, in, H, W) -> (B, N, C).
// The input shape is the caller's to check (forward_features does).
torch::Tensor embed_tokens(ViTImpl& model, const torch::Tensor& x);

// Logits (B, K) from the input h (B, N, C) of block `first` on: the remaining blocks (through
// `trace`'s gates when given), the final norm, pooling and the head(s) as forward() combines them.
torch::Tensor logits_from_block(ViTImpl& model, torch::Tensor h, int first, Trace* trace = nullptr);

}  // namespace vitopt::model
