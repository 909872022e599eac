// Image transforms: resize (bilinear), random crop with zero padding, center crop, horizontal
// flip, and conversion to normalized float CHW. Pure functions of (image, rng) for determinism.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "data/dataset.h"

namespace vitopt::data {

struct TransformOptions {
  int size = 28;                 // output side (the model's image_size)
  int channels = 1;              // output channels (1 <-> 3 converted if the data differs)
  std::vector<float> mean{0.5f}; // per output channel, on pixels scaled to [0,1]
  std::vector<float> std{0.5f};
  bool train = false;            // enables the augmentation below
  int random_crop_padding = 0;   // train: pad by this many pixels then random-crop back (e.g. 2)
  bool horizontal_flip = false;  // train: flip with probability 0.5
  float crop_pct = 1.0f;         // eval: resize to size / crop_pct then center-crop to size
};

Image resize_bilinear(const Image& in, int height, int width);
Image center_crop(const Image& in, int height, int width);
Image pad_random_crop(const Image& in, int padding, std::mt19937_64& rng);
Image horizontal_flip(const Image& in);
Image convert_channels(const Image& in, int channels);  // grey <-> RGB

// Full pipeline: image -> `out` (C, H, W) floats normalized. `rng` drives augmentation.
void apply_transform(const Image& in, const TransformOptions& options, std::mt19937_64& rng,
                     float* out);

}  // namespace vitopt::data
