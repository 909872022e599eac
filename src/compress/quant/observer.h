// Calibration observers: choose a clipping range [lo, hi] for a quantizer from observed values.
// min-max (the full range), percentile (e.g. 99.99% of the values inside), and MSE-optimal
// clipping (the range, shrunk by a searched ratio, whose fake-quant error is smallest). Weights are
// observed row by row (per output channel); activations through a bounded token sample.
#pragma once

#include <torch/torch.h>

#include "compress/quant/quantizer.h"

namespace vitopt::quant {

struct ObserverOptions {
  ObserverKind kind = ObserverKind::MinMax;
  double percentile = 99.99;  // percentile observer: keep this % of values inside (per side)
  int mse_grid = 80;  // MSE observer: clip ratios tried, evenly spaced in [mse_min_ratio, 1]
  double mse_min_ratio = 0.2;  // smallest clip ratio (fraction of the min-max range)
};

// Clipping range per row of `x` (R, K): lo (R), hi (R). For `bits`/`symmetric` (MSE only), the
// range whose fake quantization of the row has the least squared error.
std::pair<torch::Tensor, torch::Tensor> observe_rows(const torch::Tensor& x, int bits,
                                                     bool symmetric, const ObserverOptions& o);

// Accumulates an activation site's statistics over calibration batches: exact min/max, per-channel
// min/max over the last dimension, and up to `max_rows` sampled tokens (rows of K values) for the
// percentile/MSE observers and histograms. Sampling is seeded: same data, same sample.
class ActivationObserver {
 public:
  explicit ActivationObserver(int64_t max_rows = 4096, uint64_t seed = 0);
  void observe(const torch::Tensor& x);  // x (..., K)
  bool empty() const { return rows_seen_ == 0; }
  int64_t rows_seen() const { return rows_seen_; }
  torch::Tensor sample() const;                               // (S, K) float32 (S <= max_rows)
  const torch::Tensor& channel_min() const { return cmin_; }  // (K)
  const torch::Tensor& channel_max() const { return cmax_; }  // (K)
  float min() const;
  float max() const;
  // Per-tensor clipping range {lo, hi} chosen by the observer options on the sample (min-max uses
  // the exact min/max over everything seen).
  std::pair<float, float> range(int bits, bool symmetric, const ObserverOptions& o) const;

 private:
  int64_t max_rows_;
  at::Generator gen_;
  std::vector<torch::Tensor> kept_;  // sampled rows per batch
  int64_t kept_rows_ = 0;
  int64_t rows_seen_ = 0;
  torch::Tensor cmin_, cmax_;
};

}  // namespace vitopt::quant
