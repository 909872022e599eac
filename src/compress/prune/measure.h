// What the pruning job measures itself: top-1/top-3 on the test split, batch inference time of
// two models side by side (interleaved runs in one process, so machine load hits both alike),
// and weight-value histograms. The full evaluator (src/eval) adds its reports on top.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/vit.h"

namespace vitopt::prune {

struct Accuracy {
  int64_t count = 0;
  double top1 = 0, top3 = 0, top5 = 0, loss = 0;  // fractions; mean cross-entropy
  nlohmann::json to_json() const;
};

// Test-split accuracy (first `limit` images; 0: all) with the model's eval transform.
Accuracy test_accuracy(model::ViT& model, const std::string& data, size_t limit, bool quiet,
                       const std::string& label = "  eval");

struct SpeedComparison {
  int64_t batch = 64;
  int runs = 0;
  double a_ms = 0, b_ms = 0;  // median forward time of each model
  double speedup = 0;         // a_ms / b_ms
  nlohmann::json to_json() const;
};

// Median forward time of `a` and `b` on the same random (batch, C, H, W) input, runs
// interleaved a, b, a, b... after warm-up. Both models must take the same input shape.
SpeedComparison compare_speed(model::ViT& a, model::ViT& b, int64_t batch, int runs);

// Histogram of the prunable weights: {"lo", "hi", "bins", "counts"} over [lo, hi] (symmetric,
// the largest |w|), zeros counted in their bin like any value.
nlohmann::json weight_histogram(model::ViT& model, int bins, double hi = 0);

// Params/MACs of the config plus nonzero prunable weights.
nlohmann::json size_json(model::ViT& model);

}  // namespace vitopt::prune
