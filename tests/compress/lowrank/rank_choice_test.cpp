// Rank rules on hand-computable spectra and shapes, and the budget allocation's guarantees.
#include "compress/lowrank/rank_choice.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace vitopt::lowrank {
namespace {

TEST(RankChoice, EnergyCountsSquaredSingularValues) {
  const std::vector<double> s = {3, 2, 1};  // energies 9, 4, 1 of 14: 0.643, 0.929, 1
  EXPECT_EQ(rank_for_energy(s, 0.6), 1);
  EXPECT_EQ(rank_for_energy(s, 0.643), 2);
  EXPECT_EQ(rank_for_energy(s, 0.9), 2);
  EXPECT_EQ(rank_for_energy(s, 0.95), 3);
  EXPECT_EQ(rank_for_energy(s, 1.0), 3);
  EXPECT_EQ(rank_for_energy({0, 0}, 0.9), 1);
}

TEST(RankChoice, RoundsToTheSimdWidthWithinTheFullRank) {
  EXPECT_EQ(round_rank(20, 128), 16);
  EXPECT_EQ(round_rank(24, 128), 32);  // halfway rounds up
  EXPECT_EQ(round_rank(3, 128), 16);   // at least one multiple
  EXPECT_EQ(round_rank(200, 128), 128);
  EXPECT_EQ(round_rank(10, 8), 8);  // capped at the full rank
}

TEST(RankChoice, UsefulRanksSaveWeights) {
  EXPECT_EQ(max_useful_rank(384, 128), 80);  // 80 * 512 = 40960 < 49152 = 96 * 512
  EXPECT_EQ(max_useful_rank(128, 128), 48);  // r * 256 < 16384 needs r < 64
  EXPECT_EQ(max_useful_rank(32, 32), 0);     // rank 16 already costs 1024 = 32 * 32
  EXPECT_EQ(factor_params(384, 128, 16), 16 * 512);
}

TEST(RankChoice, BudgetTakesTheCheapestSavingsFirstAndIsMet) {
  // Layer 0 is insensitive, layer 1 sensitive: savings come from layer 0 first.
  const std::vector<std::vector<LayerOption>> layers = {
      {{0, 1000, 0}, {32, 600, 0.01}, {16, 300, 0.02}},
      {{0, 1000, 0}, {32, 600, 1.0}, {16, 300, 2.0}},
  };
  auto pick = allocate_budget(layers, 400);
  ASSERT_EQ(pick.size(), 2u);
  EXPECT_EQ(pick[0], 1u);
  EXPECT_EQ(pick[1], 0u);
  pick = allocate_budget(layers, 900);  // layer 0 at its smallest (700 saved) is not enough
  EXPECT_EQ(pick[0], 2u);
  EXPECT_NE(pick[1], 0u);
  int64_t saved = 0;
  for (size_t l = 0; l < layers.size(); ++l)
    saved += layers[l][0].params - layers[l][pick[l]].params;
  EXPECT_GE(saved, 900);
  EXPECT_TRUE(allocate_budget(layers, 1401).empty());  // at most 700 + 700 can be saved
  EXPECT_EQ(allocate_budget(layers, 0), (std::vector<size_t>{0, 0}));
}

TEST(RankChoice, ParamBudgetText) {
  EXPECT_EQ(parse_param_budget("800000", 10), 800000);
  EXPECT_EQ(parse_param_budget("1.2M", 10), 1200000);
  EXPECT_EQ(parse_param_budget("300K", 10), 300000);
  EXPECT_EQ(parse_param_budget("60%", 1000), 600);
  for (const char* bad : {"", "abc", "-5", "0", "1.2X", "%", "M"})
    EXPECT_THROW(parse_param_budget(bad, 1000), core::InputError) << bad;
}

}  // namespace
}  // namespace vitopt::lowrank
