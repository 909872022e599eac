// Slimming: turns a structure plan into a genuinely smaller model. The new ViTConfig records the
// per-block heads (with the original head indices in kept_heads), MLP widths and skipped
// sub-blocks, and the kept rows/columns of every coupled weight are copied in. With ablation
// means the removed parts' mean outputs are folded into biases (ablation.h), so the result equals
// the mean-ablated model; without, it equals the zero-ablated (gated) one. The result is an
// ordinary model; nothing is masked-but-computed.
#pragma once

#include "model/edit/ablation.h"
#include "model/edit/plan.h"
#include "model/vit.h"

namespace vitopt::edit {

// The config `plan` leads to (blocks edited; a block with no kept heads/neurons gets its
// sub-block skipped, never a zero width).
io::ViTConfig slim_config(const io::ViTConfig& config, const StructurePlan& plan);

// A new model with the plan's structure and the kept weights (masked weights stay zero). The
// source model is unchanged. Throws InputError for shared/low-rank models.
model::ViT slim(model::ViT& model, const StructurePlan& plan, const AblationMeans* means = nullptr);

}  // namespace vitopt::edit
