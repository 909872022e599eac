// One Linear's SVD, kept so that every rank can be tried without recomputing it: the singular
// values that rank rules read, the rank-r approximation that sensitivity is measured with, and
// the factor pair that goes into the model. Plain (W = U S Vh, Eckart-Young on the weights) or
// whitened (W L = U S Vh with L from activation_aware.h: Eckart-Young on the layer's outputs for
// the calibration data, mapped back by L^-1).
// Legend: out/in a Linear's output/input width, r rank.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace vitopt::lowrank {

class LayerSpectrum {
 public:
  // weight (out, in); whiten (in, in) lower triangular, or undefined for plain SVD.
  LayerSpectrum(const torch::Tensor& weight, const torch::Tensor& whiten = {});

  int64_t full_rank() const { return s_.size(0); }
  std::vector<double> singular() const;  // descending
  // Rank-r factors U (out, r), V (r, in), singular values split evenly (sqrt(S_r) into each);
  // U V is the best rank-r approximation in this spectrum's norm. InputError for r outside
  // [1, full_rank()].
  std::pair<torch::Tensor, torch::Tensor> factors(int64_t rank) const;
  torch::Tensor approximation(int64_t rank) const;  // U V (out, in), float32

 private:
  torch::Tensor u_, s_, vh_;  // float64: (out, k), (k), (k, in)
  torch::Tensor whiten_;      // (in, in) or undefined
};

}  // namespace vitopt::lowrank
