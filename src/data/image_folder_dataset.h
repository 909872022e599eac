// Datasets of encoded image files decoded on demand: ImageFolder (one sub-folder per class, with
// or without train/ and val|test/ split folders; without them a fixed 20% is held out for test)
// and Tiny-ImageNet (wnids.txt, train/<wnid>/images, val/images + val_annotations.txt).
#pragma once

#include <filesystem>
#include <memory>

#include "data/dataset.h"

namespace vitopt::data {

// Share of the images (percent) held out as the test split of a folder without train/ and
// val|test/ sub-folders. Which images: those whose relative path hashes (FNV-1a 64) to a value
// below this modulo 100, so the split is the same on every machine and run.
inline constexpr int kImageFolderHoldoutPercent = 20;

// True if `root` has at least one sub-folder (the ImageFolder layout is then assumed).
bool has_sub_folders(const std::filesystem::path& root);

std::shared_ptr<Dataset> open_image_folder(const std::filesystem::path& root, Split split);
std::shared_ptr<Dataset> open_tiny_imagenet(const std::filesystem::path& root, Split split);

}  // namespace vitopt::data
