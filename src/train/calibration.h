// Calibration data: the first images of a data set's training split (never the test split) with
// the model's eval transform, as batches with labels. The one loader of calibration data for
// every compression method (importance scores, quantization observers, ablation means).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "io/vit_config.h"

namespace vitopt::train {

struct CalibBatch {
  torch::Tensor x;  // (B, C, H, W) normalized
  torch::Tensor y;  // (B) int64
};

// The first `count` training images of `data` in batches of `batch`. Throws InputError for
// count 0 or a data set with fewer images than asked for.
std::vector<CalibBatch> calibration_batches(const std::string& data, const io::ViTConfig& config,
                                            size_t count, int64_t batch, uint64_t seed);

// All images of the batches in one tensor (count, C, H, W); their labels (count) into `labels`.
torch::Tensor calibration_images(const std::vector<CalibBatch>& batches,
                                 torch::Tensor* labels = nullptr);

// The images of each batch alone (for passes that take image batches).
std::vector<torch::Tensor> batch_inputs(const std::vector<CalibBatch>& batches);

}  // namespace vitopt::train
