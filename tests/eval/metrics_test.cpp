// Metric math on hand-computed cases: the tie rule, classes never predicted or absent, macro
// averages, loss, ECE/reliability/histograms on known confidences, baseline agreement.
#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace vitopt::eval {
namespace {

// 4 images, 4 classes; class 3 never appears in labels nor predictions.
//  r0 [2,1,0,-5] label 0: predicted 0 (hit).
//  r1 [1,1,0,-5] label 1: tie 0/1 -> predicted 0 (lower index first); label rank 1.
//  r2 [0,0,0,-5] label 2: three-way tie -> predicted 0; label rank 2 (top-3 hit).
//  r3 [0,3,1,-5] label 0: predicted 1; label rank 2.
const std::vector<float> kLogits = {2, 1, 0, -5, 1, 1, 0, -5, 0, 0, 0, -5, 0, 3, 1, -5};
const std::vector<int64_t> kLabels = {0, 1, 2, 0};

TEST(Metrics, TieRuleRanksLowerIndexFirst) {
  EXPECT_EQ(label_rank(&kLogits[4], 4, 1), 1);
  EXPECT_EQ(label_rank(&kLogits[4], 4, 0), 0);
  EXPECT_EQ(label_rank(&kLogits[8], 4, 2), 2);
  EXPECT_EQ(predicted_class(&kLogits[8], 4), 0);
  EXPECT_EQ(predictions(kLogits, 4), (std::vector<int64_t>{0, 0, 0, 1}));
  const float nan_row[3] = {std::numeric_limits<float>::quiet_NaN(), 0.f, -1.f};
  EXPECT_EQ(label_rank(nan_row, 3, 0), 2);  // NaN ranks last: never a hit through NaN
  EXPECT_EQ(predicted_class(nan_row, 3), 1);
}

TEST(Metrics, ClassificationHandComputed) {
  const auto c = classification_metrics(kLogits, kLabels, 4, {"a", "b", "c", "d"});
  EXPECT_EQ(c.images, 4);
  EXPECT_DOUBLE_EQ(c.top1, 0.25);
  EXPECT_DOUBLE_EQ(c.top3, 1.0);
  EXPECT_DOUBLE_EQ(c.top5, 1.0);
  const std::vector<std::vector<int64_t>> confusion = {
      {1, 1, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}};
  EXPECT_EQ(c.confusion, confusion);
  // Class 0: support 2, predicted 3, correct 1 -> P 1/3, R 1/2, F1 0.4.
  EXPECT_EQ(c.per_class[0].name, "a");
  EXPECT_EQ(c.per_class[0].support, 2);
  EXPECT_EQ(c.per_class[0].predicted, 3);
  EXPECT_DOUBLE_EQ(c.per_class[0].precision, 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.per_class[0].recall, 0.5);
  EXPECT_NEAR(c.per_class[0].f1, 0.4, 1e-15);
  EXPECT_DOUBLE_EQ(*c.per_class[0].accuracy, 0.5);
  // Class 2: never predicted -> precision defined as 0 and still averaged.
  EXPECT_EQ(c.per_class[2].predicted, 0);
  EXPECT_EQ(c.per_class[2].precision, 0.0);
  EXPECT_EQ(c.never_predicted, std::vector<int>{2});
  // Class 3: no images, never predicted -> accuracy null, excluded from the macro averages.
  EXPECT_FALSE(c.per_class[3].accuracy.has_value());
  EXPECT_EQ(c.macro_classes, 3);
  EXPECT_NEAR(c.macro_precision, (1.0 / 3) / 3, 1e-15);
  EXPECT_NEAR(c.macro_recall, 0.5 / 3, 1e-15);
  EXPECT_NEAR(c.macro_f1, 0.4 / 3, 1e-15);
  // Loss: mean of logsumexp(row) - row[label].
  auto lse = [](std::vector<double> r) {
    double s = 0;
    for (double v : r) s += std::exp(v);
    return std::log(s);
  };
  const double loss = (lse({2, 1, 0, -5}) - 2 + lse({1, 1, 0, -5}) - 1 + lse({0, 0, 0, -5}) - 0 +
                       lse({0, 3, 1, -5}) - 0) /
                      4;
  EXPECT_NEAR(c.loss, loss, 1e-12);
}

TEST(Metrics, PredictedButAbsentClassCountsInMacro) {
  // 2 images of class 0, both predicted as class 1 (which has no images).
  const std::vector<float> logits = {0, 1, 0, 1};
  const auto c = classification_metrics(logits, {0, 0}, 2, {});
  EXPECT_EQ(c.macro_classes, 2);  // class 1 has false positives: it is averaged (P = R = 0)
  EXPECT_EQ(c.macro_precision, 0.0);
  EXPECT_EQ(c.per_class[1].name, "1");
  EXPECT_FALSE(c.per_class[1].accuracy.has_value());
  EXPECT_EQ(c.never_predicted, std::vector<int>{0});
}

// Logits of a 2-class row whose softmax max-probability is p (class 0 predicted).
std::vector<float> row_with_confidence(double p) {
  return {static_cast<float>(std::log(p / (1 - p))), 0.f};
}

TEST(Metrics, CalibrationKnownCase) {
  // Confidences 0.91 (correct), 0.91 (wrong), 0.62, 0.62 (both correct).
  // 15 bins: 0.91 -> bin 13 (acc 0.5), 0.62 -> bin 9 (acc 1).
  // ECE = 2/4 * |0.5 - 0.91| + 2/4 * |1 - 0.62| = 0.205 + 0.19 = 0.395.
  std::vector<float> logits;
  for (double p : {0.91, 0.91, 0.62, 0.62}) {
    const auto r = row_with_confidence(p);
    logits.insert(logits.end(), r.begin(), r.end());
  }
  const std::vector<int64_t> labels = {0, 1, 0, 0};
  const auto c = confidence_metrics(logits, labels, 2);
  EXPECT_NEAR(c.ece, 0.395, 1e-6);
  EXPECT_NEAR(c.mean_max_prob, (0.91 * 2 + 0.62 * 2) / 4, 1e-6);
  EXPECT_NEAR(*c.mean_max_prob_correct, (0.91 + 0.62 * 2) / 3, 1e-6);
  EXPECT_NEAR(*c.mean_max_prob_incorrect, 0.91, 1e-6);
  EXPECT_NEAR(*c.gap, (0.91 + 1.24) / 3 - 0.91, 1e-6);
  auto h = [](double p) { return -p * std::log(p) - (1 - p) * std::log(1 - p); };
  EXPECT_NEAR(c.mean_entropy, (2 * h(0.91) + 2 * h(0.62)) / 4, 1e-6);
  ASSERT_EQ(c.reliability.size(), 15u);
  EXPECT_EQ(c.reliability[13].count, 2);
  EXPECT_NEAR(*c.reliability[13].accuracy, 0.5, 1e-12);
  EXPECT_EQ(c.reliability[9].count, 2);
  EXPECT_FALSE(c.reliability[0].mean_confidence.has_value());  // empty bin: null, not 0
  // 20-bin histograms: 0.91 -> bin 18, 0.62 -> bin 12.
  EXPECT_EQ(c.histogram_correct[18], 1);
  EXPECT_EQ(c.histogram_incorrect[18], 1);
  EXPECT_EQ(c.histogram_correct[12], 2);
}

TEST(Metrics, AllCorrectHasNoIncorrectMean) {
  const auto c = confidence_metrics({3, 0, 0, 3}, {0, 1}, 2);
  EXPECT_FALSE(c.mean_max_prob_incorrect.has_value());
  EXPECT_FALSE(c.gap.has_value());
}

TEST(Metrics, BaselineComparison) {
  const std::vector<int64_t> labels = {0, 1, 1, 2};
  const std::vector<int64_t> base = {0, 1, 0, 0}, model = {0, 0, 1, 0};
  std::vector<float> lb, lm;
  for (size_t i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) {
      lb.push_back(j == base[i] ? 1.f : 0.f);
      lm.push_back(j == model[i] ? 1.f : 0.f);
    }
  const auto cb = classification_metrics(lb, labels, 3, {});
  const auto cm = classification_metrics(lm, labels, 3, {});
  const auto r = compare_predictions(model, base, labels, cm, cb);
  EXPECT_DOUBLE_EQ(r.agreement, 0.5);  // images 0 and 3 agree
  EXPECT_EQ(r.both_correct, 1);
  EXPECT_EQ(r.only_baseline_correct, 1);
  EXPECT_EQ(r.only_model_correct, 1);
  EXPECT_EQ(r.both_wrong, 1);
  ASSERT_EQ(r.per_class_accuracy_delta.size(), 3u);
  EXPECT_DOUBLE_EQ(*r.per_class_accuracy_delta[0], 0.0);
  EXPECT_DOUBLE_EQ(*r.per_class_accuracy_delta[1], 0.0);  // 1/2 vs 1/2, different images
  EXPECT_DOUBLE_EQ(*r.per_class_accuracy_delta[2], 0.0);
}

}  // namespace
}  // namespace vitopt::eval
