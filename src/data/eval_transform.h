// A model's eval preprocessing as TransformOptions, from the plain fields every model file records
// (no LibTorch, no model config type): what `infer`/`eval` apply on both engines.
#pragma once

#include <vector>

#include "data/transforms.h"

namespace vitopt::data {

// Resize to size / crop_pct, center-crop to size, convert to `channels`, normalize with mean/std
// (per channel, on pixels scaled to [0,1]). No augmentation, so no randomness.
TransformOptions eval_transform(int size, int channels, std::vector<float> mean,
                                std::vector<float> std, float crop_pct);

}  // namespace vitopt::data
