// Shared by the training tests: a small synthetic dataset and the tiny test model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "data/dataset.h"
#include "io/presets.h"
#include "model/vit.h"

namespace vitopt::train::testing {

// `count` random 28x28x1 images in 10 classes, the same for the same seed.
inline std::shared_ptr<data::Dataset> synthetic(size_t count, uint64_t seed) {
  data::DatasetSpec spec;
  spec.kind = "synthetic";
  spec.synthetic_size = 28;
  spec.synthetic_channels = 1;
  spec.synthetic_classes = 10;
  spec.synthetic_count = count;
  spec.seed = seed;
  return data::open_dataset(spec, data::Split::Train);
}

// The vit-tiny-test preset with weights drawn from `seed`.
inline model::ViT tiny_model(uint64_t seed) {
  model::ViT vit(io::preset("vit-tiny-test"));
  vit->init_weights(seed);
  return vit;
}

}  // namespace vitopt::train::testing
