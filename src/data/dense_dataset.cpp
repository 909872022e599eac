// Sample access for in-memory datasets, and the pixel statistics used for unknown sources.
#include "data/dense_dataset.h"

#include <cmath>

#include "core/error.h"

namespace vitopt::data {

void check_index(size_t index, size_t size, const std::string& what) {
  if (index >= size) core::throw_input("{}: sample {} out of range (size {})", what, index, size);
}

Image DenseDataset::image(size_t index) const {
  check_index(index, size(), d_.description);
  Image out;
  out.height = d_.height;
  out.width = d_.width;
  out.channels = d_.channels;
  const auto* first = d_.pixels.data() + index * image_bytes();
  out.pixels.assign(first, first + image_bytes());
  return out;
}

int DenseDataset::label(size_t index) const {
  check_index(index, size(), d_.description);
  return d_.labels[index];
}

void measure_mean_std(const std::vector<uint8_t>& pixels, int channels, std::vector<float>& mean,
                      std::vector<float>& std) {
  // Integer sums are exact (255^2 * 2^40 still fits in 64 bits), so the result does not depend
  // on summation order.
  std::vector<uint64_t> sum(channels, 0), sum_sq(channels, 0);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const uint64_t p = pixels[i];
    sum[i % channels] += p;
    sum_sq[i % channels] += p * p;
  }
  const double count = pixels.empty() ? 1.0 : static_cast<double>(pixels.size() / channels);
  mean.assign(channels, 0.5f);
  std.assign(channels, 0.5f);
  for (int c = 0; c < channels; ++c) {
    const double m = static_cast<double>(sum[c]) / count / 255.0;
    const double var = static_cast<double>(sum_sq[c]) / count / (255.0 * 255.0) - m * m;
    mean[c] = static_cast<float>(m);
    // A constant image would give std 0 and a division by zero in normalization.
    std[c] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.0f;
  }
}

}  // namespace vitopt::data
