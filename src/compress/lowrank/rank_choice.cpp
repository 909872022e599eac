// Energy / ratio rank rules and the greedy budget allocation (smallest marginal cost per weight
// saved; a layer may jump over options, so a non-convex cost curve is not a trap).
#include "compress/lowrank/rank_choice.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace vitopt::lowrank {

int rank_for_energy(const std::vector<double>& singular, double energy) {
  double total = 0;
  for (double s : singular) total += s * s;
  if (singular.empty() || total <= 0) return 1;
  double kept = 0;
  for (size_t r = 0; r < singular.size(); ++r) {
    kept += singular[r] * singular[r];
    // A relative slack of 1e-12 so that energy 1.0 is reached despite rounding in the sums.
    if (kept >= energy * total * (1 - 1e-12)) return static_cast<int>(r + 1);
  }
  return static_cast<int>(singular.size());
}

int round_rank(int rank, int full, int multiple) {
  const int rounded = std::max(multiple, (rank + multiple / 2) / multiple * multiple);
  return std::min(rounded, full);
}

int max_useful_rank(int out, int in, int multiple) {
  const int64_t dense = static_cast<int64_t>(out) * in;
  int best = 0;
  for (int r = multiple; r <= std::min(out, in); r += multiple)
    if (factor_params(out, in, r) < dense) best = r;
  return best;
}

std::vector<size_t> allocate_budget(const std::vector<std::vector<LayerOption>>& layers,
                                    int64_t to_save) {
  std::vector<size_t> chosen(layers.size(), 0);
  int64_t saved = 0;
  while (saved < to_save) {
    double best_slope = std::numeric_limits<double>::infinity();
    size_t best_layer = layers.size(), best_option = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& now = layers[l][chosen[l]];
      for (size_t o = 0; o < layers[l].size(); ++o) {
        const auto& next = layers[l][o];
        const int64_t gain = now.params - next.params;
        if (gain <= 0) continue;
        // Cost increase per weight saved; a measured decrease counts as free.
        const double slope = std::max(0.0, next.cost - now.cost) / static_cast<double>(gain);
        // Ties: prefer the larger saving, so a free move takes the whole way at once.
        const int64_t best_gain = best_layer < layers.size()
                                      ? layers[best_layer][chosen[best_layer]].params -
                                            layers[best_layer][best_option].params
                                      : 0;
        if (slope < best_slope || (slope == best_slope && gain > best_gain)) {
          best_slope = slope;
          best_layer = l;
          best_option = o;
        }
      }
    }
    if (best_layer == layers.size()) return {};  // nothing left to save: the budget is out of reach
    saved += layers[best_layer][chosen[best_layer]].params - layers[best_layer][best_option].params;
    chosen[best_layer] = best_option;
  }
  return chosen;
}

int64_t parse_param_budget(const std::string& text, int64_t model_params, const std::string& flag) {
  auto bad = [&] {
    core::throw_input(
        "{}: expected a parameter count (800000, 300K, 1.2M) or a percentage of the "
        "model's {} parameters (60%), got '{}'",
        flag, model_params, text);
  };
  if (text.empty()) bad();
  double scale = 1;
  std::string number = text;
  switch (text.back()) {
    case '%':
      scale = static_cast<double>(model_params) / 100;
      break;
    case 'k':
    case 'K':
      scale = 1e3;
      break;
    case 'm':
    case 'M':
      scale = 1e6;
      break;
    case 'g':
    case 'G':
      scale = 1e9;
      break;
    default:
      break;
  }
  if (scale != 1 || text.back() == '%') number.pop_back();
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) bad();
  } catch (const std::exception&) {
    bad();
  }
  const double budget = value * scale;
  if (!(budget >= 1) || !std::isfinite(budget)) bad();
  return static_cast<int64_t>(std::floor(budget));
}

}  // namespace vitopt::lowrank
