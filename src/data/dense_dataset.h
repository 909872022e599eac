// A dataset held entirely in memory as fixed-size uint8 HWC images (IDX and CIFAR both load a
// whole split at open: 60000x784 or 50000x3072 bytes). Readers fill a DenseData and wrap it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace vitopt::data {

struct DenseData {
  int height = 0, width = 0, channels = 0;
  int num_classes = 0;
  std::vector<uint8_t> pixels;  // (N, H, W, C)
  std::vector<int> labels;      // (N), each in [0, num_classes)
  std::vector<std::string> class_names;
  std::vector<float> mean, std;
  std::string description;
};

class DenseDataset : public Dataset {
 public:
  explicit DenseDataset(DenseData data) : d_(std::move(data)) {}

  size_t size() const override { return d_.labels.size(); }
  int num_classes() const override { return d_.num_classes; }
  int channels() const override { return d_.channels; }
  int native_size() const override { return d_.height == d_.width ? d_.height : 0; }
  Image image(size_t index) const override;
  int label(size_t index) const override;
  std::vector<std::string> class_names() const override { return d_.class_names; }
  std::string description() const override { return d_.description; }
  std::vector<float> default_mean() const override { return d_.mean; }
  std::vector<float> default_std() const override { return d_.std; }

 private:
  size_t image_bytes() const { return static_cast<size_t>(d_.height) * d_.width * d_.channels; }
  DenseData d_;
};

// Per-channel mean/std of HWC uint8 pixels scaled to [0,1]: used when the source is unknown.
void measure_mean_std(const std::vector<uint8_t>& pixels, int channels, std::vector<float>& mean,
                      std::vector<float>& std);

// Throws InputError if index >= size ("<what>: sample <index> out of range (size N)").
void check_index(size_t index, size_t size, const std::string& what);

}  // namespace vitopt::data
