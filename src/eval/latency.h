// Timing helpers: `time_runs` (warm-up, then one wall-clock sample per call) used by every
// latency figure, and the side-by-side forward latency of two LibTorch models, run interleaved
// a, b, a, b... in one process so machine load hits both alike.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/vit.h"

namespace vitopt::eval {

// Calls fn `warmup` times untimed, then `runs` times timed; milliseconds per timed call.
std::vector<double> time_runs(const std::function<void()>& fn, int warmup, int runs);

// Median of samples (0 for none).
double median_ms(std::vector<double> samples);

struct PairLatency {
  int64_t batch = 1;
  int runs = 0;
  double a_ms = 0, b_ms = 0;  // median forward time of each model
  double speedup = 0;         // a_ms / b_ms
  nlohmann::json to_json(const char* a_name = "a_ms", const char* b_name = "b_ms") const;
};

// Median forward time of `a` and `b` on the same random (batch, C, H, W) input (a's shape), after
// 3 warm-up rounds; both in eval mode, no gradients. Both models must take the same input shape.
PairLatency interleaved_latency(model::ViT& a, model::ViT& b, int64_t batch, int runs,
                                torch::Device device = torch::kCPU);

}  // namespace vitopt::eval
