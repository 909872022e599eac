// A view of a contiguous range of another dataset's samples: the first N (limit_dataset) or a
// held-out tail of a training split that calibration and fine-tuning never read first (the
// architecture search estimates accuracy on it, never on the test split).
#pragma once

#include <cstddef>
#include <memory>

#include "data/dataset.h"

namespace vitopt::data {

// Samples [offset, offset + count) of `base`. InputError naming the dataset when the range does
// not fit.
std::shared_ptr<Dataset> range_dataset(std::shared_ptr<Dataset> base, size_t offset, size_t count);

// The last `count` samples of `base` (InputError when it has fewer).
std::shared_ptr<Dataset> tail_dataset(std::shared_ptr<Dataset> base, size_t count);

}  // namespace vitopt::data
