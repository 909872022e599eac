// Datasets yield decoded images (uint8, HWC) and integer labels; no LibTorch here. Formats: IDX
// (MNIST/Fashion-MNIST, raw or .gz), CIFAR-10/100 binary, ImageFolder (class sub-folders, PNG/JPEG
// via stb; also Tiny-ImageNet's val_annotations.txt layout), and synthetic random images.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vitopt::data {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C) row-major
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual int num_classes() const = 0;
  virtual int channels() const = 0;  // channels of the images it yields
  // Native image side for fixed-size formats (28 for MNIST, 32 for CIFAR, 64 for Tiny-ImageNet),
  // 0 if images vary (ImageFolder).
  virtual int native_size() const = 0;
  // Thread-safe: loaders call it from several threads. Errors name the file and the sample.
  virtual Image image(size_t index) const = 0;
  virtual int label(size_t index) const = 0;
  virtual std::vector<std::string> class_names() const = 0;
  virtual std::string description() const = 0;  // e.g. "fashion-mnist test (10000 images)"
  // Per-channel mean/std of the pixels scaled to [0,1], the usual normalization for this data.
  virtual std::vector<float> default_mean() const = 0;
  virtual std::vector<float> default_std() const = 0;
};

enum class Split { Train, Test };

struct DatasetSpec {
  // "fashion-mnist" | "mnist" | "cifar10" | "cifar100" | "imagefolder" | "tiny-imagenet" |
  // "synthetic" | "idx" | "auto" (detect from the files at `path`)
  std::string kind = "fashion-mnist";
  std::string path;              // root folder (empty: the packaged default for the kind)
  // synthetic only: image shape, classes, count, seed
  int synthetic_size = 28, synthetic_channels = 1, synthetic_classes = 10;
  size_t synthetic_count = 1024;
  uint64_t seed = 0;
};

// Parses a --data value: a known name ("fashion-mnist", "cifar10:/path", "synthetic"), or a path
// whose layout is detected (IDX files, CIFAR .bin files, class sub-folders, Tiny-ImageNet).
DatasetSpec parse_dataset_spec(const std::string& text);

// Opens the split. Throws core::InputError naming the file and problem (missing, truncated, bad
// magic, label out of range, undecodable image).
std::shared_ptr<Dataset> open_dataset(const DatasetSpec& spec, Split split);

// A view of the first `limit` samples (or all if limit == 0 or >= size).
std::shared_ptr<Dataset> limit_dataset(std::shared_ptr<Dataset> base, size_t limit);

}  // namespace vitopt::data
