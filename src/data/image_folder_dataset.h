// Datasets of encoded image files decoded on demand: ImageFolder (one sub-folder per class, with
// or without train/ and val|test/ split folders) and Tiny-ImageNet (wnids.txt, train/<wnid>/images,
// val/images + val_annotations.txt).
#pragma once

#include <filesystem>
#include <memory>

#include "data/dataset.h"

namespace vitopt::data {

// True if `root` has at least one sub-folder (the ImageFolder layout is then assumed).
bool has_sub_folders(const std::filesystem::path& root);

std::shared_ptr<Dataset> open_image_folder(const std::filesystem::path& root, Split split);
std::shared_ptr<Dataset> open_tiny_imagenet(const std::filesystem::path& root, Split split);

}  // namespace vitopt::data
