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
};

// Ids of the points no other point dominates (another point dominates p when its accuracy is >=
// and its cost <= p's with at least one strict). Equal points are all kept. Sorted by cost, then
// accuracy descending, then id.
std::vector<std::string> pareto_front(const std::vector<ParetoPoint>& points);

// The most accurate point with cost <= budget (ties: lower cost, then id); nullopt if none fits.
std::optional<std::string> best_under_budget(const std::vector<ParetoPoint>& points, double budget);

}  // namespace vitopt::eval
