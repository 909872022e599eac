// CIFAR-10 / CIFAR-100 binary versions: fixed-size records of label byte(s) + 3072 bytes of
// 32x32 RGB in CHW (plane) order, converted here to HWC.
#pragma once

#include <filesystem>
#include <memory>

#include "data/dataset.h"

namespace vitopt::data {

// The folder holding the .bin files: `path` itself or its cifar-10-batches-bin /
// cifar-100-binary sub-folder; empty if none has them. `classes` is 10 or 100.
std::filesystem::path find_cifar_root(const std::filesystem::path& path, int classes);

// Opens a split; `classes` is 10 (data_batch_1..5.bin / test_batch.bin) or 100 (train.bin /
// test.bin, fine labels).
std::shared_ptr<Dataset> open_cifar_dataset(const std::filesystem::path& path, Split split,
                                            int classes);

}  // namespace vitopt::data
