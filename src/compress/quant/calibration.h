// Calibration: a fixed set of normalized images, and one pass of a model over them that records
// the input of every quantizable Linear (and the patch embedding, as patch rows) in observers.
// Also small model utilities the quantization stages share (copying a ViT).
#pragma once

#include <array>

#include <torch/torch.h>

#include <map>
#include <string>

#include "compress/quant/observer.h"
#include "model/vit.h"

namespace vitopt::quant {

// The first `count` images of `data`'s train split (calibration never sees the test split), with
// the model's eval transform: (count, C, H, W) float32. Throws InputError if the data has fewer.
// Their labels (count) int64 go to `labels` if given.
torch::Tensor load_calibration_images(const std::string& data, const io::ViTConfig& config,
                                      size_t count, uint64_t seed, torch::Tensor* labels = nullptr);

// Runs `model` (eval mode, no grad) over `images` in batches and observes every quantizable
// Linear's input; returns observers by Linear name ("patch_embed.proj", "blocks.0.attn.qkv", ...).
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

// A deep copy of a ViT (same config, copied parameters and buffers, no hooks).
model::ViT copy_model(model::ViT& model);

// Logits of `model` on `images` (eval mode, no grad, batched): (count, classes).
torch::Tensor predict(model::ViT& model, const torch::Tensor& images, int64_t batch_size = 256);

// The (out, in) view of a quantizable layer's weight ("patch_embed.proj": the conv as a Linear).
torch::Tensor linear_weight(model::ViT& model, const std::string& linear_name);

}  // namespace vitopt::quant
