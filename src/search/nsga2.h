// NSGA-II's ranking (Deb et al. 2002), no LibTorch: fast non-dominated sorting with Deb's
// constraint domination (a feasible point dominates an infeasible one; of two infeasible points
// the smaller violation dominates), crowding distance, the elitist survivor choice and the binary
// tournament. Every objective is minimized (a caller maximizing accuracy passes the error).
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace vitopt::search {

struct Scored {
  std::vector<double> objectives;  // minimized; all points have the same count
  double violation = 0;            // 0: feasible; > 0: how far over the budgets (summed ratios)
};

// a constraint-dominates b.
bool dominates(const Scored& a, const Scored& b);

// Fronts of points by index: front 0 non-dominated, front 1 non-dominated once 0 is removed...
// Every index appears once; within a front indices ascend.
std::vector<std::vector<int>> non_dominated_fronts(const std::vector<Scored>& points);

// Crowding distance of each member of `front` (same order): the sum over objectives of the gap
// between its neighbours in that objective, normalized by the objective's range in the front;
// the extremes of each objective get +infinity (as does every member of a front of <= 2 points).
// An objective with zero range adds nothing.
std::vector<double> crowding_distance(const std::vector<Scored>& points,
                                      const std::vector<int>& front);

// Rank (front number) and crowding distance of every point.
struct Ranking {
  std::vector<int> rank;
  std::vector<double> crowding;
};
Ranking rank_points(const std::vector<Scored>& points);

// The `count` survivors (indices): whole fronts in order, the last one cut by descending crowding
// distance (ties by index). count >= points.size() returns every index.
std::vector<int> select_survivors(const std::vector<Scored>& points, size_t count);

// Binary tournament: two distinct random indices of `ranking`; the lower rank wins, then the larger
// crowding distance, then the lower index.
int tournament(const Ranking& ranking, std::mt19937_64& rng);

}  // namespace vitopt::search
