// Pareto front and budget selection (rules in pareto.h).
#include "eval/pareto.h"

#include <algorithm>

namespace vitopt::eval {

std::vector<std::string> pareto_front(const std::vector<ParetoPoint>& points) {
  std::vector<ParetoPoint> front;
  for (const auto& p : points) {
    const bool dominated = std::any_of(points.begin(), points.end(), [&](const ParetoPoint& q) {
      return q.accuracy >= p.accuracy && q.cost <= p.cost &&
             (q.accuracy > p.accuracy || q.cost < p.cost);
    });
    if (!dominated) front.push_back(p);
  }
  std::sort(front.begin(), front.end(), [](const ParetoPoint& a, const ParetoPoint& b) {
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.accuracy != b.accuracy) return a.accuracy > b.accuracy;
    return a.id < b.id;
  });
  std::vector<std::string> ids;
  for (const auto& p : front) ids.push_back(p.id);
  return ids;
}

std::optional<std::string> best_under_budget(const std::vector<ParetoPoint>& points,
                                             double budget) {
  const ParetoPoint* best = nullptr;
  for (const auto& p : points) {
    if (p.cost > budget) continue;
    if (best == nullptr || p.accuracy > best->accuracy ||
        (p.accuracy == best->accuracy &&
         (p.cost < best->cost || (p.cost == best->cost && p.id < best->id))))
      best = &p;
  }
  if (best == nullptr) return std::nullopt;
  return best->id;
}

}  // namespace vitopt::eval
