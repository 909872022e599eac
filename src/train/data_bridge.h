// The seam between the LibTorch-free data layer and LibTorch: transform options that match a
// model's expected input, and Batch -> tensors.
#pragma once

#include <torch/torch.h>

#include "data/loader.h"
#include "io/vit_config.h"

namespace vitopt::train {

// Eval-time transform for `config`: its image size/channels and preprocess mean/std/crop_pct.
data::TransformOptions eval_transform(const io::ViTConfig& config);
// Train-time transform: eval_transform + augmentation (crop padding in pixels, optional flip).
data::TransformOptions train_transform(const io::ViTConfig& config, int crop_padding,
                                       bool hflip);

// Views the batch's buffers as tensors (no copy on CPU) and moves them to `device`.
// images (B, C, H, W) float32, labels (B) int64. The batch must outlive the CPU tensors.
torch::Tensor batch_images(data::Batch& batch, const torch::Device& device);
torch::Tensor batch_labels(data::Batch& batch, const torch::Device& device);

// Opens a --data spec for a split, limited to `limit` images (0: all). A plain "synthetic" spec
// takes the model's input shape and class count; its pixels derive from `seed` (test split: +1).
std::shared_ptr<data::Dataset> open_dataset_for(const std::string& spec_text,
                                                const io::ViTConfig& config, data::Split split,
                                                size_t limit, uint64_t seed);

// Checks that a dataset can feed a model (channels convertible, classes within the head);
// throws InputError naming both otherwise.
void check_dataset_fits(const data::Dataset& dataset, const io::ViTConfig& config);

}  // namespace vitopt::train
