// Honest latency: the round plan, statistics from per-round samples (p50 spread = IQR of round
// p50s), the tie rule in Pareto fronts and "fastest", interleaved execution order, and the RAPL
// energy meter's domains and reasons on fake powercap trees.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "eval/efficiency.h"
#include "eval/latency.h"
#include "eval/pareto.h"
#include "test_util.h"

namespace vitopt::eval {
namespace {

TEST(LatencyRounds, PlanSplitsRunsIntoRounds) {
  auto p = plan_rounds(50, 5);
  EXPECT_EQ(p.rounds, 5);
  EXPECT_EQ(p.runs_per_round, 10);
  EXPECT_EQ(p.warmup, 5);
  p = plan_rounds(3, 5);  // fewer runs than rounds: one run per round
  EXPECT_EQ(p.rounds, 3);
  EXPECT_EQ(p.runs_per_round, 1);
  p = plan_rounds(11, 5);  // rounded up
  EXPECT_EQ(p.runs_per_round, 3);
}

TEST(LatencyRounds, StatisticsFromSyntheticRounds) {
  // Round p50s 1, 2, 3, 4, 5 (each round: p50 is its middle value).
  const std::vector<std::vector<double>> rounds = {
      {0.5, 1, 9}, {2, 1.5, 2.5}, {3, 3, 3}, {4, 10, 3.9}, {5, 5, 5}};
  const auto l = latency_from_rounds(rounds, 4, 1);
  EXPECT_EQ(l.rounds, 5);
  EXPECT_EQ(l.runs, 15);
  EXPECT_EQ(l.warmup, 4);
  EXPECT_EQ(l.round_p50_ms, (std::vector<double>{1, 2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(l.p50_spread_ms, 4.0 - 2.0);  // numpy percentile 75 - 25 of 1..5
  EXPECT_DOUBLE_EQ(l.min_ms, 0.5);
  EXPECT_DOUBLE_EQ(l.max_ms, 10);
  EXPECT_DOUBLE_EQ(l.p50_ms, 3);  // pooled: 15 values, median 3
  EXPECT_DOUBLE_EQ(latency_from_rounds({{2, 4}}, 3, 1).p50_spread_ms, 0.0);  // one round
}

TEST(LatencyRounds, TieRule) {
  EXPECT_TRUE(faster_beyond_spread(1.0, 0.1, 1.5, 0.1));    // 0.5 apart > 0.2
  EXPECT_FALSE(faster_beyond_spread(1.0, 0.3, 1.5, 0.3));   // 0.5 apart < 0.6: tie
  EXPECT_FALSE(faster_beyond_spread(1.5, 0.0, 1.0, 0.0));   // slower
  EXPECT_FALSE(faster_beyond_spread(1.0, 0.25, 1.5, 0.25)); // exactly the spread: still a tie
}

TEST(LatencyRounds, InterleavedOrderRotatesAndCountsRuns) {
  std::vector<int> order;
  std::vector<std::function<void()>> fns;
  for (int m = 0; m < 3; ++m) fns.push_back([&order, m] { order.push_back(m); });
  RoundPlan p;
  p.rounds = 3;
  p.runs_per_round = 2;
  p.warmup = 1;
  const auto ms = time_in_rounds(fns, p);
  ASSERT_EQ(ms.size(), 3u);
  for (const auto& model : ms) {
    ASSERT_EQ(model.size(), 3u);
    for (const auto& round : model) EXPECT_EQ(round.size(), 2u);
  }
  // warm-up 0,1,2; round 0: 0 0 0, 1 1 1, 2 2 2 (one untimed + two timed); round 1 starts at 1.
  const std::vector<int> expect = {0, 1, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                   0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1};
  EXPECT_EQ(order, expect);
}

// The case of the issue: a dense model with zeros measured 1.16 ms against the baseline's 1.53 ms
// on a noisy machine, with spreads that cover the gap, and lower accuracy: not on the front, and
// not "fastest" over the more accurate baseline.
TEST(ParetoTies, FasterOnlyInsideTheNoiseIsATie) {
  const std::vector<ParetoPoint> lat = {{"baseline", 0.90, 1.53, 0.20},
                                        {"prune/global-50", 0.89, 1.16, 0.25},
                                        {"int8", 0.895, 0.60, 0.05}};
  EXPECT_EQ(pareto_front(lat), (std::vector<std::string>{"int8", "baseline"}));
  std::vector<std::string> tied;
  EXPECT_EQ(cheapest(lat, &tied), "int8");
  EXPECT_EQ(tied, std::vector<std::string>{"int8"});
  // The same two models without spreads: the old rule put the pruned one on the front.
  const std::vector<ParetoPoint> exact = {{"baseline", 0.90, 1.53, 0}, {"prune/global-50", 0.89, 1.16, 0}};
  EXPECT_EQ(pareto_front(exact), (std::vector<std::string>{"prune/global-50", "baseline"}));
  auto noisy = exact;
  noisy[0].spread = 0.20;
  noisy[1].spread = 0.25;
  EXPECT_EQ(pareto_front(noisy), std::vector<std::string>{"baseline"});
  EXPECT_EQ(cheapest(noisy, &tied), "baseline");  // tied on latency, more accurate
  EXPECT_EQ(tied, (std::vector<std::string>{"baseline", "prune/global-50"}));
  // Two tied fastest: the more accurate one is named, both are reported.
  const std::vector<ParetoPoint> two = {{"a", 0.80, 1.00, 0.10}, {"b", 0.85, 1.12, 0.05},
                                        {"c", 0.90, 3.00, 0.10}};
  EXPECT_EQ(cheapest(two, &tied), "b");
  EXPECT_EQ(tied, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pareto_front(two), (std::vector<std::string>{"b", "c"}));  // a: tied cost, less accurate
}

TEST(ParetoTies, BeyondTheSpreadTheCheaperModelStaysOnTheFront) {
  const std::vector<ParetoPoint> lat = {{"baseline", 0.90, 1.53, 0.05},
                                        {"slim", 0.88, 0.90, 0.05}};
  EXPECT_EQ(pareto_front(lat), (std::vector<std::string>{"slim", "baseline"}));
  EXPECT_EQ(cheapest(lat, nullptr), "slim");
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(EnergyMeter, PackageAndDramDomainsWithWrapAround) {
  testing::TempDir tmp;
  const auto root = tmp / "powercap";
  write(root / "intel-rapl:0/name", "package-0\n");
  write(root / "intel-rapl:0/energy_uj", "1000000\n");
  write(root / "intel-rapl:0/max_energy_range_uj", "262143328850\n");
  write(root / "intel-rapl:0:0/name", "core\n");  // inside the package: not added again
  write(root / "intel-rapl:0:0/energy_uj", "5\n");
  write(root / "intel-rapl:0:1/name", "dram\n");
  write(root / "intel-rapl:0:1/energy_uj", "200\n");
  write(root / "intel-rapl:1/name", "psys\n");  // the platform: covers more than the package
  write(root / "intel-rapl:1/energy_uj", "7\n");
  write(tmp / "cpuinfo", "flags\t\t: fpu sse2 avx2\n");
  EnergyMeter m(root, tmp / "cpuinfo");
  ASSERT_TRUE(m.available()) << m.source();
  EXPECT_TRUE(m.has_dram());
  EXPECT_NE(m.includes().find("package-0"), std::string::npos) << m.includes();
  EXPECT_NE(m.includes().find("DRAM reported apart"), std::string::npos) << m.includes();
  write(root / "intel-rapl:0/energy_uj", "3500000\n");
  write(root / "intel-rapl:0:0/energy_uj", "999999999\n");
  write(root / "intel-rapl:0:1/energy_uj", "500200\n");
  EXPECT_DOUBLE_EQ(m.joules(), 2.5);
  EXPECT_DOUBLE_EQ(m.dram_joules(), 0.5);
  write(root / "intel-rapl:0/energy_uj", "100\n");  // wrapped: 262143328850 - 3500000 + 100
  EXPECT_NEAR(m.joules(), 2.5 + (262143328850.0 - 3500000 + 100) * 1e-6, 1e-6);
}

TEST(EnergyMeter, SaysWhyWhenUnavailable) {
  testing::TempDir tmp;
  write(tmp / "vm_cpuinfo", "flags\t\t: fpu sse2 hypervisor avx2\n");
  write(tmp / "cpuinfo", "flags\t\t: fpu sse2 avx2\n");
  EnergyMeter vm(tmp / "missing", tmp / "vm_cpuinfo");
  EXPECT_FALSE(vm.available());
  EXPECT_NE(vm.source().find("virtual machine"), std::string::npos) << vm.source();
  EnergyMeter bare(tmp / "missing", tmp / "cpuinfo");
  EXPECT_NE(bare.source().find("does not exist"), std::string::npos) << bare.source();
  EXPECT_EQ(bare.source().find("virtual machine"), std::string::npos) << bare.source();
  write(tmp / "empty/other/name", "x");
  EnergyMeter none(tmp / "empty", tmp / "cpuinfo");
  EXPECT_NE(none.source().find("no RAPL package zone"), std::string::npos) << none.source();
  if (::geteuid() != 0) {  // root reads any file: the permission case needs a normal user
    write(tmp / "locked/intel-rapl:0/name", "package-0\n");
    write(tmp / "locked/intel-rapl:0/energy_uj", "1\n");
    std::filesystem::permissions(tmp / "locked/intel-rapl:0/energy_uj",
                                 std::filesystem::perms::none);
    EnergyMeter locked(tmp / "locked", tmp / "cpuinfo");
    EXPECT_FALSE(locked.available());
    EXPECT_NE(locked.source().find("permission denied"), std::string::npos) << locked.source();
  }
}

}  // namespace
}  // namespace vitopt::eval
