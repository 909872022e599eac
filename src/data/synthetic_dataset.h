// Random images for smoke tests and benchmarks: no files, pixels computed from (seed, split,
// index) in image(), so any count costs no memory and any sample is reproducible alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "data/dataset.h"

namespace vitopt::data {

// Throws InputError for a non-positive size/count/classes or channels other than 1 or 3.
std::shared_ptr<Dataset> open_synthetic_dataset(int size, int channels, int classes, size_t count,
                                                uint64_t seed, Split split);

}  // namespace vitopt::data
