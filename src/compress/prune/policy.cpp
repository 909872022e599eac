// Ranking policies: global and per-layer removal with exact counts and a minimum of one unit per
// block, and sub-block removal.
#include "compress/prune/policy.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"

namespace vitopt::prune {
namespace {

std::vector<float> to_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

std::vector<std::vector<int>> keep_global(const std::vector<torch::Tensor>& scores, int64_t count) {
  std::vector<std::tuple<float, int, int>> units;  // (score, block, index)
  std::vector<std::vector<bool>> keep(scores.size());
  for (size_t b = 0; b < scores.size(); ++b) {
    if (!scores[b].defined()) continue;
    auto v = to_vector(scores[b]);
    keep[b].assign(v.size(), true);
    for (size_t i = 0; i < v.size(); ++i)
      units.emplace_back(v[i], static_cast<int>(b), static_cast<int>(i));
  }
  std::stable_sort(units.begin(), units.end());
  std::vector<int64_t> left(scores.size());
  for (size_t b = 0; b < scores.size(); ++b) left[b] = static_cast<int64_t>(keep[b].size());
  int64_t removed = 0;
  for (const auto& [s, b, i] : units) {
    if (removed >= count) break;
    if (left[b] <= 1) continue;  // never empty a block
    keep[b][i] = false;
    --left[b];
    ++removed;
  }
  std::vector<std::vector<int>> out(scores.size());
  for (size_t b = 0; b < scores.size(); ++b)
    for (size_t i = 0; i < keep[b].size(); ++i)
      if (keep[b][i]) out[b].push_back(static_cast<int>(i));
  return out;
}

std::vector<std::vector<int>> keep_per_layer(const std::vector<torch::Tensor>& scores,
                                             const std::vector<int64_t>& counts) {
  if (counts.size() != scores.size())
    core::throw_internal("keep_per_layer: {} counts for {} blocks", counts.size(), scores.size());
  std::vector<std::vector<int>> out(scores.size());
  for (size_t b = 0; b < scores.size(); ++b) {
    if (!scores[b].defined()) continue;
    std::vector<torch::Tensor> one(scores.size());
    one[b] = scores[b];
    out[b] = keep_global(one, counts[b])[b];
  }
  return out;
}

std::vector<bool> keep_subblocks(const std::vector<double>& scores, int64_t count) {
  std::vector<std::pair<double, int>> live;
  for (size_t i = 0; i < scores.size(); ++i)
    if (!std::isnan(scores[i])) live.emplace_back(scores[i], static_cast<int>(i));
  std::stable_sort(live.begin(), live.end());
  std::vector<bool> keep(scores.size(), false);
  for (const auto& [s, i] : live) keep[i] = true;
  const int64_t n = std::min<int64_t>(count, static_cast<int64_t>(live.size()) - 1);
  for (int64_t k = 0; k < n; ++k) keep[live[k].second] = false;
  return keep;
}

double cubic_sparsity(double target, int k, int K) {
  if (K < 1 || k < 0 || k > K) core::throw_internal("cubic_sparsity: step {} of {}", k, K);
  const double t = 1.0 - static_cast<double>(k) / K;
  return target * (1.0 - t * t * t);
}

}  // namespace vitopt::prune
