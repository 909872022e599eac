// Classification and confidence metrics from raw logits, in plain C++ (no LibTorch) so every
// number can be checked by hand. Logits are row-major (n, K); labels are class indices.
// Conventions (also in docs/metrics.md):
//  - Ranking and ties: classes are ordered by descending logit, equal logits by ascending class
//    index (a stable sort). The prediction is the first class in that order (the lowest index
//    among the maxima); top-k counts a hit when the label is among the first k. NaN ranks last.
//  - Precision of a class never predicted is 0; recall/accuracy of a class with no images is 0
//    (accuracy null). Macro averages run over the classes present in the labels or predictions.
//  - Macro F1 is the mean of the per-class F1 (not the F1 of macro precision and recall).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "report/metrics_schema.h"

namespace vitopt::eval {

// How many classes rank ahead of `label` in one row of K logits (0: top-1 hit).
int64_t label_rank(const float* row, int64_t num_classes, int64_t label);
// The predicted class of one row under the tie rule above.
int64_t predicted_class(const float* row, int64_t num_classes);
// Predictions of every row: (n).
std::vector<int64_t> predictions(const std::vector<float>& logits, int64_t num_classes);

// Top-1/3/5, loss, macro precision/recall/F1, per-class stats and the confusion matrix.
// `class_names` may be empty or have K entries.
report::Classification classification_metrics(const std::vector<float>& logits,
                                              const std::vector<int64_t>& labels,
                                              int64_t num_classes,
                                              const std::vector<std::string>& class_names);

// Max-probability statistics, entropy, ECE over `ece_bins` equal-width bins (bin i holds
// confidences in (i/B, (i+1)/B], bin 0 also 0) and histograms of max-probability over
// `histogram_bins` equal-width bins, split by correct/incorrect top-1.
report::Confidence confidence_metrics(const std::vector<float>& logits,
                                      const std::vector<int64_t>& labels, int64_t num_classes,
                                      int ece_bins = 15, int histogram_bins = 20);

// Agreement and correctness overlap of two prediction vectors on the same labels, and per-class
// accuracy deltas (model - baseline; null where a class has no images). `deltas` is left empty.
report::BaselineComparison compare_predictions(const std::vector<int64_t>& model_pred,
                                               const std::vector<int64_t>& baseline_pred,
                                               const std::vector<int64_t>& labels,
                                               const report::Classification& model,
                                               const report::Classification& baseline);

}  // namespace vitopt::eval
