// NSGA-II's ranking on hand-made points: constraint domination, the fronts, crowding distances
// computed by hand, the elitist cut and the tournament's preferences.
#include "search/nsga2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

namespace vitopt::search {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Scored pt(std::vector<double> objectives, double violation = 0) {
  return {std::move(objectives), violation};
}

TEST(Nsga2, ParetoDomination) {
  EXPECT_TRUE(dominates(pt({1, 2}), pt({2, 3})));
  EXPECT_TRUE(dominates(pt({1, 2}), pt({1, 3})));   // equal in one, better in the other
  EXPECT_FALSE(dominates(pt({1, 2}), pt({1, 2})));  // equal: neither
  EXPECT_FALSE(dominates(pt({1, 3}), pt({2, 2})));  // a trade-off: neither
  EXPECT_FALSE(dominates(pt({2, 2}), pt({1, 3})));
  EXPECT_TRUE(dominates(pt({0, 0, 1}), pt({0, 0, 2})));
}

TEST(Nsga2, ConstraintDomination) {
  // Feasible beats infeasible whatever the objectives.
  EXPECT_TRUE(dominates(pt({9, 9}), pt({0, 0}, 0.1)));
  EXPECT_FALSE(dominates(pt({0, 0}, 0.1), pt({9, 9})));
  // Two infeasible: the smaller violation, whatever the objectives.
  EXPECT_TRUE(dominates(pt({9, 9}, 0.2), pt({0, 0}, 0.5)));
  EXPECT_FALSE(dominates(pt({0, 0}, 0.5), pt({9, 9}, 0.2)));
  EXPECT_FALSE(dominates(pt({0, 0}, 0.5), pt({9, 9}, 0.5)));
}

TEST(Nsga2, FrontsOfHandMadePoints) {
  // 0 (1,5)  1 (2,3)  2 (4,1)  3 (3,4)  4 (5,5)  5 (2,3) again  6 (0,0) infeasible 0.3
  // 7 (6,6) infeasible 0.1  8 (4,2)
  const std::vector<Scored> p = {pt({1, 5}),      pt({2, 3}),      pt({4, 1}),
                                 pt({3, 4}),      pt({5, 5}),      pt({2, 3}),
                                 pt({0, 0}, 0.3), pt({6, 6}, 0.1), pt({4, 2})};
  // Front 0: 0, 1, 2, 5 (1 and 5 are equal: neither dominates). Front 1: 3 (by 1) and 8 (by 2).
  // Front 2: 4. Then the infeasible ones by violation: 7, then 6.
  const std::vector<std::vector<int>> expected = {{0, 1, 2, 5}, {3, 8}, {4}, {7}, {6}};
  EXPECT_EQ(non_dominated_fronts(p), expected);
  EXPECT_TRUE(non_dominated_fronts({}).empty());
  const Ranking r = rank_points(p);
  EXPECT_EQ(r.rank, (std::vector<int>{0, 0, 0, 1, 2, 0, 4, 3, 1}));
}

TEST(Nsga2, CrowdingDistanceByHand) {
  // One front of 5 points; ranges: f0 4 - 0 = 4, f1 10 - 0 = 10.
  const std::vector<Scored> p = {pt({0, 10}), pt({1, 6}), pt({2, 5}), pt({3, 1}), pt({4, 0})};
  const auto d = crowding_distance(p, {0, 1, 2, 3, 4});
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0], kInf);
  EXPECT_EQ(d[4], kInf);
  EXPECT_DOUBLE_EQ(d[1], (2 - 0) / 4.0 + (10 - 5) / 10.0);  // 1.0
  EXPECT_DOUBLE_EQ(d[2], (3 - 1) / 4.0 + (6 - 1) / 10.0);   // 1.0
  EXPECT_DOUBLE_EQ(d[3], (4 - 2) / 4.0 + (5 - 0) / 10.0);   // 1.0
  // Results follow the order of `front`, which may be any subset in any order.
  const auto sub = crowding_distance(p, {3, 1, 2});
  EXPECT_DOUBLE_EQ(sub[2], (3 - 1) / 2.0 + (6 - 1) / 5.0);  // point 2 between 1 and 3
  EXPECT_EQ(sub[0], kInf);
  EXPECT_EQ(sub[1], kInf);
  // Fronts of one or two points: all infinite.
  EXPECT_EQ(crowding_distance(p, {2}), (std::vector<double>{kInf}));
  EXPECT_EQ(crowding_distance(p, {1, 3}), (std::vector<double>{kInf, kInf}));
}

TEST(Nsga2, CrowdingDistanceZeroRangeAddsNothing) {
  // f1 is 7 everywhere: only f0 counts, and f1 marks no extremes.
  const std::vector<Scored> p = {pt({0, 7}), pt({1, 7}), pt({3, 7}), pt({4, 7})};
  const auto d = crowding_distance(p, {0, 1, 2, 3});
  EXPECT_EQ(d[0], kInf);
  EXPECT_DOUBLE_EQ(d[1], 3 / 4.0);
  EXPECT_DOUBLE_EQ(d[2], 3 / 4.0);
  EXPECT_EQ(d[3], kInf);
  // Every objective constant: no distance at all, no infinities.
  const std::vector<Scored> same = {pt({1, 1}), pt({1, 1}), pt({1, 1})};
  EXPECT_EQ(crowding_distance(same, {0, 1, 2}), (std::vector<double>{0, 0, 0}));
  // Ties at an extreme: the lower index takes the minimum's infinity, the higher the maximum's.
  const std::vector<Scored> lo = {pt({0, 5}), pt({0, 5}), pt({1, 5}), pt({3, 5})};
  const auto l = crowding_distance(lo, {0, 1, 2, 3});
  EXPECT_EQ(l[0], kInf);
  EXPECT_DOUBLE_EQ(l[1], (1 - 0) / 3.0);
  EXPECT_DOUBLE_EQ(l[2], (3 - 0) / 3.0);
  EXPECT_EQ(l[3], kInf);
  const std::vector<Scored> hi = {pt({0, 5}), pt({2, 5}), pt({2, 5})};
  EXPECT_EQ(crowding_distance(hi, {0, 1, 2}), (std::vector<double>{kInf, 1.0, kInf}));
}

TEST(Nsga2, SelectSurvivorsCutsTheLastFrontByCrowding) {
  // Front 0: 0 and 1. Front 1: 2..6, a trade-off curve. Front 2: the infeasible 7.
  const std::vector<Scored> p = {pt({0, 0.5}), pt({0.5, 0}), pt({1, 9}), pt({2, 7}),
                                 pt({3, 6}),   pt({4, 5}),   pt({6, 1}), pt({9, 9}, 1)};
  const auto fronts = non_dominated_fronts(p);
  ASSERT_EQ(fronts[0], (std::vector<int>{0, 1}));
  ASSERT_EQ(fronts[1], (std::vector<int>{2, 3, 4, 5, 6}));
  // Ranges 5 and 8: point 3 (3-1)/5 + (9-6)/8 = 0.775, point 4 (4-2)/5 + (7-5)/8 = 0.65,
  // point 5 (6-3)/5 + (6-1)/8 = 1.225.
  const auto d = crowding_distance(p, fronts[1]);
  EXPECT_DOUBLE_EQ(d[1], 0.775);
  EXPECT_DOUBLE_EQ(d[2], 0.65);
  EXPECT_DOUBLE_EQ(d[3], 1.225);
  EXPECT_EQ(select_survivors(p, 2), (std::vector<int>{0, 1}));
  EXPECT_EQ(select_survivors(p, 4), (std::vector<int>{0, 1, 2, 6}));  // the two infinities
  EXPECT_EQ(select_survivors(p, 5), (std::vector<int>{0, 1, 2, 6, 5}));
  EXPECT_EQ(select_survivors(p, 6), (std::vector<int>{0, 1, 2, 6, 5, 3}));
  EXPECT_EQ(select_survivors(p, 7), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));  // whole fronts
  EXPECT_EQ(select_survivors(p, 8), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(select_survivors(p, 20).size(), 8u);
  EXPECT_TRUE(select_survivors(p, 0).empty());
  // Equal crowding: the lower index first.
  const std::vector<Scored> q = {pt({0, 4}), pt({1, 3}), pt({2, 2}), pt({3, 1}), pt({4, 0})};
  EXPECT_EQ(select_survivors(q, 3), (std::vector<int>{0, 4, 1}));
}

TEST(Nsga2, TournamentPrefersRankThenCrowdingThenIndex) {
  std::mt19937_64 rng(5);
  // Two points: both always drawn; the better one always wins.
  EXPECT_EQ(tournament(Ranking{{1, 0}, {kInf, 0.1}}, rng), 1);   // lower rank
  EXPECT_EQ(tournament(Ranking{{0, 0}, {0.5, 2.0}}, rng), 1);    // larger crowding
  EXPECT_EQ(tournament(Ranking{{0, 0}, {kInf, kInf}}, rng), 0);  // lower index
  EXPECT_EQ(tournament(Ranking{{3}, {0.0}}, rng), 0);            // one point
  // Many points: the winner is never the worst, the best wins every tournament it enters
  // (2 of 4 points are drawn: it enters half of them), and draws are spread over all pairs.
  const Ranking r{{2, 1, 0, 1}, {1, 5, 0, 3}};  // best: 2 (rank 0), worst: 0 (rank 2)
  std::map<int, int> wins;
  for (int i = 0; i < 4000; ++i) ++wins[tournament(r, rng)];
  EXPECT_EQ(wins[0], 0);
  EXPECT_NEAR(wins[2], 2000, 150);
  EXPECT_NEAR(wins[1], 4000.0 * 2 / 6, 150);  // beats 0 and 3: pairs {0,1} {1,3} of 6
  EXPECT_NEAR(wins[3], 4000.0 * 1 / 6, 150);  // beats only 0
}

}  // namespace
}  // namespace vitopt::search
