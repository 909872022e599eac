// Mixed-precision weight bits: per-layer sensitivity (quantize only that layer at b bits, measure
// the damage on calibration images) and a bit allocation that fits a file-size budget with the
// least predicted loss (a multiple-choice knapsack solved exactly by dynamic programming, assuming
// per-layer damages add up, as HAWQ-style allocators do).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/quant/ptq.h"

namespace vitopt::quant {

struct Sensitivity {
  std::string layer;  // Linear name
  int bits = 8;
  double kl = 0;         // mean KL(fp32 || layer-quantized) of the softmax outputs
  double top1_drop = 0;  // accuracy drop on the calibration images (points, fp32 - quant)
  int64_t bytes = 0;     // predicted bytes of this layer's weights + scales (+ zero points)
};

// Sensitivities of every quantizable Linear of `folded` (an fp32 model, already reparametrized as
// PTQ will do) at each of `bits`, on `images` with `labels` (weights only, activations fp32).
std::vector<Sensitivity> layer_sensitivity(model::ViT& folded, const torch::Tensor& images,
                                           const torch::Tensor& labels,
                                           const std::vector<int>& bits, const PtqOptions& o,
                                           bool quiet);

struct BitAllocation {
  std::map<std::string, int> bits;  // per Linear
  int64_t weight_bytes = 0;         // predicted bytes of the quantized weights
  double predicted_kl = 0;          // sum of the chosen layers' KL
};

// The allocation with the least summed KL whose weight bytes fit `weight_budget_bytes`. Throws
// InputError (naming --size-budget-mb and the smallest reachable size) if nothing fits.
BitAllocation allocate_bits(const std::vector<Sensitivity>& table, int64_t weight_budget_bytes,
                            int64_t fixed_bytes);

}  // namespace vitopt::quant
