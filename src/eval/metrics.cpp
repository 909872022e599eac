// Classification and confidence metrics (see metrics.h for the tie and undefined-value rules).
// Probabilities and log-probabilities are computed in double from the float logits.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace vitopt::eval {

namespace {

// NaN sorts below everything (a broken model must not score hits through NaN comparisons).
double key(float v) {
  return std::isnan(v) ? -std::numeric_limits<double>::infinity() : static_cast<double>(v);
}

// Does class j rank ahead of class i?
bool ahead(const float* row, int64_t j, int64_t i) {
  const double a = key(row[j]), b = key(row[i]);
  return a > b || (a == b && j < i);
}

void check_shapes(const std::vector<float>& logits, const std::vector<int64_t>& labels, int64_t k) {
  if (k <= 0 || logits.size() != labels.size() * static_cast<size_t>(k))
    core::throw_internal("eval metrics: {} logits do not match {} labels x {} classes",
                         logits.size(), labels.size(), k);
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= k)
      core::throw_input("eval metrics: label {} of image {} is outside the model's {} classes",
                        labels[i], i, k);
}

// Softmax of one row in double: probabilities (K) and log-sum-exp.
double softmax_row(const float* row, int64_t k, std::vector<double>& p) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < k; ++j) mx = std::max(mx, key(row[j]));
  double sum = 0;
  for (int64_t j = 0; j < k; ++j) sum += (p[j] = std::exp(key(row[j]) - mx));
  for (int64_t j = 0; j < k; ++j) p[j] /= sum;
  return mx + std::log(sum);
}

double ratio(int64_t a, int64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

}  // namespace

int64_t label_rank(const float* row, int64_t num_classes, int64_t label) {
  int64_t rank = 0;
  for (int64_t j = 0; j < num_classes; ++j)
    if (j != label && ahead(row, j, label)) ++rank;
  return rank;
}

int64_t predicted_class(const float* row, int64_t num_classes) {
  int64_t best = 0;
  for (int64_t j = 1; j < num_classes; ++j)
    if (ahead(row, j, best)) best = j;
  return best;
}

std::vector<int64_t> predictions(const std::vector<float>& logits, int64_t num_classes) {
  const size_t n = logits.size() / static_cast<size_t>(num_classes);
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = predicted_class(&logits[i * num_classes], num_classes);
  return out;
}

report::Classification classification_metrics(const std::vector<float>& logits,
                                              const std::vector<int64_t>& labels,
                                              int64_t num_classes,
                                              const std::vector<std::string>& class_names) {
  check_shapes(logits, labels, num_classes);
  const int64_t n = static_cast<int64_t>(labels.size()), k = num_classes;
  report::Classification c;
  c.images = n;
  c.confusion.assign(k, std::vector<int64_t>(k, 0));
  int64_t hit1 = 0, hit3 = 0, hit5 = 0;
  double loss = 0;
  std::vector<double> p(k);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &logits[i * k];
    const int64_t rank = label_rank(row, k, labels[i]);
    hit1 += rank < 1;
    hit3 += rank < 3;
    hit5 += rank < 5;
    const double lse = softmax_row(row, k, p);
    loss += lse - key(row[labels[i]]);
    ++c.confusion[labels[i]][predicted_class(row, k)];
  }
  c.top1 = ratio(hit1, n);
  c.top3 = ratio(hit3, n);
  c.top5 = ratio(hit5, n);
  c.loss = n == 0 ? 0.0 : loss / static_cast<double>(n);
  double sp = 0, sr = 0, sf = 0;
  for (int64_t j = 0; j < k; ++j) {
    report::ClassStats s;
    s.index = static_cast<int>(j);
    s.name = static_cast<int64_t>(class_names.size()) == k ? class_names[j] : std::to_string(j);
    for (int64_t t = 0; t < k; ++t) {
      s.support += c.confusion[j][t];
      s.predicted += c.confusion[t][j];
    }
    s.correct = c.confusion[j][j];
    if (s.support > 0) s.accuracy = ratio(s.correct, s.support);
    s.precision = ratio(s.correct, s.predicted);  // 0 when never predicted
    s.recall = ratio(s.correct, s.support);       // 0 without support
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
    if (s.support > 0 || s.predicted > 0) {
      sp += s.precision;
      sr += s.recall;
      sf += s.f1;
      ++c.macro_classes;
    }
    if (s.support > 0 && s.predicted == 0) c.never_predicted.push_back(s.index);
    c.per_class.push_back(s);
  }
  if (c.macro_classes > 0) {
    c.macro_precision = sp / c.macro_classes;
    c.macro_recall = sr / c.macro_classes;
    c.macro_f1 = sf / c.macro_classes;
  }
  return c;
}

report::Confidence confidence_metrics(const std::vector<float>& logits,
                                      const std::vector<int64_t>& labels, int64_t num_classes,
                                      int ece_bins, int histogram_bins) {
  check_shapes(logits, labels, num_classes);
  if (ece_bins < 1 || histogram_bins < 1)
    core::throw_internal("confidence_metrics: bins must be positive");
  const int64_t n = static_cast<int64_t>(labels.size()), k = num_classes;
  report::Confidence c;
  c.ece_bins = ece_bins;
  c.histogram_bins = histogram_bins;
  c.histogram_correct.assign(histogram_bins, 0);
  c.histogram_incorrect.assign(histogram_bins, 0);
  std::vector<int64_t> bin_count(ece_bins, 0), bin_correct(ece_bins, 0);
  std::vector<double> bin_conf(ece_bins, 0.0);
  // Bin of a value in [0, 1] over `bins` intervals (i/B, (i+1)/B]; 0 goes to bin 0.
  auto bin_of = [](double v, int bins) {
    const int b = static_cast<int>(std::ceil(v * bins)) - 1;
    return std::clamp(b, 0, bins - 1);
  };
  double sum_conf = 0, sum_conf_ok = 0, sum_conf_bad = 0, sum_entropy = 0;
  int64_t n_ok = 0;
  std::vector<double> p(k);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &logits[i * k];
    softmax_row(row, k, p);
    const int64_t pred = predicted_class(row, k);
    const double conf = p[pred];
    const bool ok = pred == labels[i];
    double entropy = 0;
    for (double q : p)
      if (q > 0) entropy -= q * std::log(q);
    sum_conf += conf;
    sum_entropy += entropy;
    (ok ? sum_conf_ok : sum_conf_bad) += conf;
    n_ok += ok;
    const int b = bin_of(conf, ece_bins);
    ++bin_count[b];
    bin_correct[b] += ok;
    bin_conf[b] += conf;
    ++(ok ? c.histogram_correct : c.histogram_incorrect)[bin_of(conf, histogram_bins)];
  }
  if (n > 0) {
    c.mean_max_prob = sum_conf / static_cast<double>(n);
    c.mean_entropy = sum_entropy / static_cast<double>(n);
  }
  if (n_ok > 0) c.mean_max_prob_correct = sum_conf_ok / static_cast<double>(n_ok);
  if (n - n_ok > 0) c.mean_max_prob_incorrect = sum_conf_bad / static_cast<double>(n - n_ok);
  if (c.mean_max_prob_correct && c.mean_max_prob_incorrect)
    c.gap = *c.mean_max_prob_correct - *c.mean_max_prob_incorrect;
  for (int b = 0; b < ece_bins; ++b) {
    report::ReliabilityBin r;
    r.lo = static_cast<double>(b) / ece_bins;
    r.hi = static_cast<double>(b + 1) / ece_bins;
    r.count = bin_count[b];
    if (r.count > 0) {
      r.mean_confidence = bin_conf[b] / static_cast<double>(r.count);
      r.accuracy = ratio(bin_correct[b], r.count);
      c.ece += static_cast<double>(r.count) / static_cast<double>(n) *
               std::abs(*r.accuracy - *r.mean_confidence);
    }
    c.reliability.push_back(r);
  }
  return c;
}

report::BaselineComparison compare_predictions(const std::vector<int64_t>& model_pred,
                                               const std::vector<int64_t>& baseline_pred,
                                               const std::vector<int64_t>& labels,
                                               const report::Classification& model,
                                               const report::Classification& baseline) {
  if (model_pred.size() != labels.size() || baseline_pred.size() != labels.size())
    core::throw_internal("compare_predictions: {} / {} predictions for {} labels",
                         model_pred.size(), baseline_pred.size(), labels.size());
  if (model.per_class.size() != baseline.per_class.size())
    core::throw_input("baseline comparison: the models have {} and {} classes",
                      model.per_class.size(), baseline.per_class.size());
  report::BaselineComparison r;
  int64_t same = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool m = model_pred[i] == labels[i], b = baseline_pred[i] == labels[i];
    same += model_pred[i] == baseline_pred[i];
    if (m && b)
      ++r.both_correct;
    else if (b)
      ++r.only_baseline_correct;
    else if (m)
      ++r.only_model_correct;
    else
      ++r.both_wrong;
  }
  r.agreement = ratio(same, static_cast<int64_t>(labels.size()));
  for (size_t j = 0; j < model.per_class.size(); ++j) {
    const auto& a = model.per_class[j].accuracy;
    const auto& b = baseline.per_class[j].accuracy;
    r.per_class_accuracy_delta.push_back(a && b ? std::optional<double>(*a - *b) : std::nullopt);
  }
  return r;
}

}  // namespace vitopt::eval
