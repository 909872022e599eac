// NSGA-II ranking (see nsga2.h). Plain O(M N^2) fast non-dominated sorting: populations are tens
// to a few hundred candidates, each costing seconds to minutes to evaluate.
#include "search/nsga2.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace vitopt::search {

bool dominates(const Scored& a, const Scored& b) {
  const bool fa = a.violation <= 0, fb = b.violation <= 0;
  if (fa != fb) return fa;                    // feasible beats infeasible
  if (!fa) return a.violation < b.violation;  // both infeasible: the smaller violation
  if (a.objectives.size() != b.objectives.size())
    core::throw_internal("dominates: {} vs {} objectives", a.objectives.size(),
                         b.objectives.size());
  bool better = false;
  for (size_t i = 0; i < a.objectives.size(); ++i) {
    if (a.objectives[i] > b.objectives[i]) return false;
    better = better || a.objectives[i] < b.objectives[i];
  }
  return better;
}

std::vector<std::vector<int>> non_dominated_fronts(const std::vector<Scored>& points) {
  const int n = static_cast<int>(points.size());
  std::vector<std::vector<int>> dominated(static_cast<size_t>(n));  // i dominates these
  std::vector<int> count(static_cast<size_t>(n), 0);                // how many dominate i
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (dominates(points[i], points[j])) {
        dominated[i].push_back(j);
        ++count[j];
      } else if (dominates(points[j], points[i])) {
        dominated[j].push_back(i);
        ++count[i];
      }
    }
  }
  std::vector<std::vector<int>> fronts;
  std::vector<int> current;
  for (int i = 0; i < n; ++i)
    if (count[i] == 0) current.push_back(i);
  while (!current.empty()) {
    std::vector<int> next;
    for (int i : current)
      for (int j : dominated[i])
        if (--count[j] == 0) next.push_back(j);
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(current));
    current = std::move(next);
  }
  return fronts;
}

std::vector<double> crowding_distance(const std::vector<Scored>& points,
                                      const std::vector<int>& front) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const size_t n = front.size();
  if (n <= 2) return std::vector<double>(n, kInf);
  std::vector<double> d(n, 0.0);
  const size_t objectives = points[static_cast<size_t>(front[0])].objectives.size();
  std::vector<size_t> order(n);
  for (size_t m = 0; m < objectives; ++m) {
    auto value = [&](size_t k) { return points[static_cast<size_t>(front[k])].objectives[m]; };
    std::iota(order.begin(), order.end(), 0);
    // Ties by index, so equal values get a deterministic order and one of them the infinity.
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return value(a) != value(b) ? value(a) < value(b) : front[a] < front[b];
    });
    const double range = value(order.back()) - value(order.front());
    if (range <= 0) continue;  // every member equal here: this objective tells them nothing
    d[order.front()] = d[order.back()] = kInf;
    for (size_t k = 1; k + 1 < n; ++k)
      d[order[k]] += (value(order[k + 1]) - value(order[k - 1])) / range;
  }
  return d;
}

Ranking rank_points(const std::vector<Scored>& points) {
  Ranking r;
  r.rank.assign(points.size(), 0);
  r.crowding.assign(points.size(), 0.0);
  const auto fronts = non_dominated_fronts(points);
  for (size_t f = 0; f < fronts.size(); ++f) {
    const auto d = crowding_distance(points, fronts[f]);
    for (size_t k = 0; k < fronts[f].size(); ++k) {
      r.rank[static_cast<size_t>(fronts[f][k])] = static_cast<int>(f);
      r.crowding[static_cast<size_t>(fronts[f][k])] = d[k];
    }
  }
  return r;
}

std::vector<int> select_survivors(const std::vector<Scored>& points, size_t count) {
  std::vector<int> out;
  if (count >= points.size()) {
    out.resize(points.size());
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (const auto& front : non_dominated_fronts(points)) {
    if (out.size() + front.size() <= count) {
      out.insert(out.end(), front.begin(), front.end());
      if (out.size() == count) break;
      continue;
    }
    const auto d = crowding_distance(points, front);
    std::vector<size_t> order(front.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return d[a] != d[b] ? d[a] > d[b] : front[a] < front[b]; });
    for (size_t k = 0; out.size() < count; ++k) out.push_back(front[order[k]]);
    break;
  }
  return out;
}

int tournament(const Ranking& ranking, std::mt19937_64& rng) {
  const size_t n = ranking.rank.size();
  if (n == 0) core::throw_internal("tournament: no points");
  if (n == 1) return 0;
  const size_t a = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  size_t b = std::uniform_int_distribution<size_t>(0, n - 2)(rng);
  if (b >= a) ++b;  // two distinct indices
  const auto better = [&](size_t x, size_t y) {
    if (ranking.rank[x] != ranking.rank[y]) return ranking.rank[x] < ranking.rank[y];
    if (ranking.crowding[x] != ranking.crowding[y])
      return ranking.crowding[x] > ranking.crowding[y];
    return x < y;
  };
  return static_cast<int>(better(a, b) ? a : b);
}

}  // namespace vitopt::search
