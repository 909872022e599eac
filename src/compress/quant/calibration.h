// Calibration passes: one pass of a model over calibration images (train/calibration.h loads
// them) that records the input of every quantizable Linear (and the patch embedding, as patch
// rows) in observers. Also small model utilities the quantization stages share.
#pragma once

#include <array>

#include <torch/torch.h>

#include <map>
#include <string>

#include "compress/quant/observer.h"
#include "model/vit.h"

namespace vitopt::quant {

// Runs `model` (eval mode, no grad) over `images` in batches and observes every quantizable
// unit's input (see model::quantizable_linears); returns observers by unit name
// ("patch_embed.proj", "blocks.0.attn.qkv", "blocks.0.mlp.fc1.weight_u", ...).
// Existing input hooks (e.g. fake quantization) run after observation, so a partly quantized
// model can be calibrated.
std::map<std::string, ActivationObserver> observe_linear_inputs(model::ViT& model,
                                                                const torch::Tensor& images,
                                                                int64_t batch_size = 64,
                                                                int64_t max_rows = 4096,
                                                                uint64_t seed = 0);

// Observes q (scaled by D^-0.5), k and v (rows of D values) at every attention that owns its
// modules, over the calibration images; returns {q, k, v} observers by block index. Existing
// attention hooks run after observation.
std::map<int, std::array<ActivationObserver, 3>> observe_attention_inputs(
    model::ViT& model, const torch::Tensor& images, int64_t batch_size = 64,
    int64_t max_rows = 4096, uint64_t seed = 0);

// Logits of `model` on `images` (eval mode, no grad, batched): (count, classes).
torch::Tensor predict(model::ViT& model, const torch::Tensor& images, int64_t batch_size = 256);

// The (out, in) view of a quantizable unit's weight ("patch_embed.proj": the conv as a Linear;
// a low-rank Linear's first unit: weight_v (r, in); "<name>.weight_u": weight_u (out, r)).
torch::Tensor linear_weight(model::ViT& model, const std::string& linear_name);

}  // namespace vitopt::quant
