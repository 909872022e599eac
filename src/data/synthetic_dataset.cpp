// Synthetic dataset: uniform random uint8 pixels, label = index % classes. The train and test
// splits draw from different streams so a "test" set is not a copy of the training set.
#include "data/synthetic_dataset.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dense_dataset.h"
#include "data/seed_mix.h"

namespace vitopt::data {
namespace {

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(int size, int channels, int classes, size_t count, uint64_t seed, Split split)
      : size_(size),
        channels_(channels),
        classes_(classes),
        count_(count),
        stream_(mix_seed(seed, split == Split::Train ? 0x7261696E : 0x74657374)),
        split_(split) {}

  size_t size() const override { return count_; }
  int num_classes() const override { return classes_; }
  int channels() const override { return channels_; }
  int native_size() const override { return size_; }
  Image image(size_t index) const override {
    check_index(index, count_, description());
    Image out;
    out.height = out.width = size_;
    out.channels = channels_;
    out.pixels.resize(static_cast<size_t>(size_) * size_ * channels_);
    // A counter-based generator: word k of sample i is splitmix64(key + k), 8 pixels a word.
    const uint64_t key = mix_seed(stream_, index);
    for (size_t k = 0; k * 8 < out.pixels.size(); ++k) {
      uint64_t word = splitmix64(key + k);
      for (size_t b = 0; b < 8 && k * 8 + b < out.pixels.size(); ++b, word >>= 8)
        out.pixels[k * 8 + b] = static_cast<uint8_t>(word & 0xff);
    }
    return out;
  }
  int label(size_t index) const override {
    check_index(index, count_, description());
    return static_cast<int>(index % static_cast<size_t>(classes_));
  }
  std::vector<std::string> class_names() const override {
    std::vector<std::string> names;
    for (int c = 0; c < classes_; ++c) names.push_back("class_" + std::to_string(c));
    return names;
  }
  std::string description() const override {
    return fmt::format("synthetic {} ({} images, {}x{}x{}, {} classes)",
                       split_ == Split::Train ? "train" : "test", count_, size_, size_, channels_,
                       classes_);
  }
  // Uniform bytes over 0..255 scaled to [0,1]: mean 0.5, std sqrt((256^2 - 1) / 12) / 255.
  std::vector<float> default_mean() const override { return std::vector<float>(channels_, 0.5f); }
  std::vector<float> default_std() const override { return std::vector<float>(channels_, 0.2898f); }

 private:
  int size_, channels_, classes_;
  size_t count_;
  uint64_t stream_;
  Split split_;
};

}  // namespace

std::shared_ptr<Dataset> open_synthetic_dataset(int size, int channels, int classes, size_t count,
                                                uint64_t seed, Split split) {
  if (size <= 0 || (channels != 1 && channels != 3) || classes <= 0 || count == 0)
    core::throw_input(
        "synthetic dataset: expected size > 0, channels 1 or 3, classes > 0, count > 0; got size "
        "{}, channels {}, classes {}, count {}",
        size, channels, classes, count);
  return std::make_shared<SyntheticDataset>(size, channels, classes, count, seed, split);
}

}  // namespace vitopt::data
