// What the pruning job reports besides the evaluator: test accuracy (a thin wrapper over eval's
// helper, with the job's labels), weight-value histograms and size counts. Dense-vs-pruned speed
// is eval::compare_files_speed (eval/latency.h: interleaved rounds on the runtime, tie rule).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/accuracy.h"
#include "model/vit.h"

namespace vitopt::prune {

using Accuracy = eval::SplitAccuracy;

// Test-split accuracy (first `limit` images; 0: all) with the model's eval transform.
Accuracy test_accuracy(model::ViT& model, const std::string& data, size_t limit, bool quiet,
                       const std::string& label = "  eval");

// Histogram of the prunable weights: {"lo", "hi", "bins", "counts"} over [lo, hi] (symmetric,
// the largest |w|), zeros counted in their bin like any value.
nlohmann::json weight_histogram(model::ViT& model, int bins, double hi = 0);

// Logits of a model on image batches, concatenated (n, K); no gradients.
torch::Tensor logits_of(model::ViT& model, const std::vector<torch::Tensor>& images);
// Mean over images of KL(reference || other) from their logits (n, K), in double precision:
// how far an edited model's predictions moved from the original's.
double mean_kl(const torch::Tensor& reference_logits, const torch::Tensor& other_logits);

// Params/MACs of the config plus nonzero prunable weights.
nlohmann::json size_json(model::ViT& model);

}  // namespace vitopt::prune
