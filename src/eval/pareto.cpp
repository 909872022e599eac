// Pareto front and budget selection (rules in pareto.h).
#include "eval/pareto.h"

#include <algorithm>
#include <cmath>

namespace vitopt::eval {

bool cost_tie(const ParetoPoint& a, const ParetoPoint& b) {
  return std::abs(a.cost - b.cost) <= a.spread + b.spread;
}

bool cheaper(const ParetoPoint& a, const ParetoPoint& b) {
  return b.cost - a.cost > a.spread + b.spread;
}

std::vector<std::string> pareto_front(const std::vector<ParetoPoint>& points) {
  std::vector<ParetoPoint> front;
  for (const auto& p : points) {
    const bool dominated = std::any_of(points.begin(), points.end(), [&](const ParetoPoint& q) {
      const bool cost_ok = cheaper(q, p) || cost_tie(q, p);
      return q.accuracy >= p.accuracy && cost_ok && (q.accuracy > p.accuracy || cheaper(q, p));
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

std::string cheapest(const std::vector<ParetoPoint>& points, std::vector<std::string>* tied) {
  if (tied != nullptr) tied->clear();
  if (points.empty()) return {};
  const ParetoPoint* low = &points.front();
  for (const auto& p : points)
    if (p.cost < low->cost || (p.cost == low->cost && p.id < low->id)) low = &p;
  const ParetoPoint* best = nullptr;
  for (const auto& p : points) {
    if (&p != low && !cost_tie(p, *low)) continue;
    if (tied != nullptr) tied->push_back(p.id);
    if (best == nullptr || p.accuracy > best->accuracy ||
        (p.accuracy == best->accuracy &&
         (p.cost < best->cost || (p.cost == best->cost && p.id < best->id))))
      best = &p;
  }
  if (tied != nullptr) std::sort(tied->begin(), tied->end());
  return best->id;
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
