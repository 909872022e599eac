// Softmax in double (stable: the row maximum is subtracted first) so probabilities printed with
// two decimals are the same whichever engine produced the logits' float rounding.
#include "infer/predictions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace vitopt::infer {

std::vector<std::vector<ClassScore>> top_classes(const std::vector<float>& logits,
                                                 int64_t num_classes, int k,
                                                 const std::vector<std::string>& names) {
  if (num_classes <= 0 || logits.size() % static_cast<size_t>(num_classes) != 0)
    core::throw_internal("top_classes: {} logits are not rows of {} classes", logits.size(),
                         num_classes);
  const auto classes = static_cast<size_t>(num_classes);
  const size_t rows = logits.size() / classes;
  const size_t keep = std::min(classes, static_cast<size_t>(std::max(k, 1)));
  std::vector<std::vector<ClassScore>> out(rows);
  std::vector<double> prob(classes);
  std::vector<size_t> order(classes);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * classes;  // (K)
    const double max = *std::max_element(row, row + classes);
    double total = 0;
    for (size_t c = 0; c < classes; ++c) total += prob[c] = std::exp(double{row[c]} - max);
    for (double& p : prob) p /= total;
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return prob[a] > prob[b]; });
    for (size_t j = 0; j < keep; ++j) {
      const size_t c = order[j];
      out[r].push_back({static_cast<int64_t>(c), c < names.size() ? names[c] : "", prob[c]});
    }
  }
  return out;
}

nlohmann::json predictions_json(const std::vector<ImagePrediction>& predictions) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : predictions) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& s : p.top)
      top.push_back({{"class", s.cls}, {"name", s.name}, {"probability", s.probability}});
    out.push_back({{"image", p.image}, {"top", top}});
  }
  return out;
}

std::string predictions_text(const std::vector<ImagePrediction>& predictions) {
  std::string out;
  for (const auto& p : predictions) {
    out += p.image + "\n";
    for (const auto& s : p.top)
      out += fmt::format("  {:3}  {:6.2f}%  {}\n", s.cls, 100 * s.probability, s.name);
  }
  return out;
}

}  // namespace vitopt::infer
