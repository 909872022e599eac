// Pareto fronts (accuracy up, cost down) and budget recommendations across evaluated models.
// Pure functions on plain numbers so the selection rules are testable on known points.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vitopt::eval {

struct ParetoPoint {
  std::string id;
  double accuracy = 0;  // higher is better
  double cost = 0;      // lower is better (latency ms, size MB)
  double spread = 0;    // measurement noise of cost (latency: p50 IQR over rounds; size: 0)
};

// Costs tie when they differ by no more than the two spreads together (exact sizes: equality).
bool cost_tie(const ParetoPoint& a, const ParetoPoint& b);
// a costs less than b beyond the noise: b.cost - a.cost > a.spread + b.spread.
bool cheaper(const ParetoPoint& a, const ParetoPoint& b);

// Ids of the points no other point dominates. q dominates p when q's accuracy is >= p's and q's
// cost is cheaper or tied, with at least one of the two strict (accuracy higher, or cost cheaper
// beyond the spreads). So a model that is only "faster" inside the noise is not on the front
// unless it is also at least as accurate. Equal points are all kept. Sorted by cost, then
// accuracy descending, then id.
std::vector<std::string> pareto_front(const std::vector<ParetoPoint>& points);

// The cheapest point, where costs tied with the lowest one (cost_tie) compete on accuracy, then
// cost, then id; `tied` receives every id tied with the lowest cost (the chosen one included).
std::string cheapest(const std::vector<ParetoPoint>& points, std::vector<std::string>* tied);

// The most accurate point with cost <= budget (ties: lower cost, then id); nullopt if none fits.
std::optional<std::string> best_under_budget(const std::vector<ParetoPoint>& points, double budget);

}  // namespace vitopt::eval
