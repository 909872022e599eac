// Pareto selection and budget recommendations on known points, plus latency percentiles.
#include "eval/pareto.h"

#include <gtest/gtest.h>

#include "eval/efficiency.h"

namespace vitopt::eval {
namespace {

const std::vector<ParetoPoint> kPoints = {
    {"A", 0.90, 10}, {"B", 0.80, 5}, {"C", 0.85, 12},  // C: dominated by A
    {"D", 0.80, 5},                                    // equal to B: both kept
    {"E", 0.95, 20}, {"F", 0.70, 5},                   // F: dominated by B (same cost, worse)
};

TEST(Pareto, FrontOfKnownPoints) {
  EXPECT_EQ(pareto_front(kPoints), (std::vector<std::string>{"B", "D", "A", "E"}));
  EXPECT_EQ(pareto_front({{"solo", 0.5, 1}}), std::vector<std::string>{"solo"});
  EXPECT_TRUE(pareto_front({}).empty());
}

TEST(Pareto, BestUnderBudget) {
  EXPECT_EQ(best_under_budget(kPoints, 11), "A");
  EXPECT_EQ(best_under_budget(kPoints, 12), "A");  // C fits too but is less accurate
  EXPECT_EQ(best_under_budget(kPoints, 5), "B");   // B and D tie: lower id
  EXPECT_EQ(best_under_budget(kPoints, 100), "E");
  EXPECT_FALSE(best_under_budget(kPoints, 4.99).has_value());
}

TEST(Efficiency, PercentilesInterpolateLinearly) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  const auto l = latency_stats(v, 3, 1);
  EXPECT_EQ(l.runs, 4);
  EXPECT_DOUBLE_EQ(l.mean_ms, 2.5);
  EXPECT_DOUBLE_EQ(l.p99_ms, 3.97);
  EXPECT_DOUBLE_EQ(l.max_ms, 4);
}

TEST(Efficiency, RssProbeReadsProcStatus) {
  std::string note;
  RssProbe::reset(&note);
  EXPECT_FALSE(note.empty());
  const auto peak = RssProbe::peak_bytes();
  const auto now = RssProbe::current_bytes();
  ASSERT_TRUE(peak.has_value());
  ASSERT_TRUE(now.has_value());
  EXPECT_GE(*peak, *now / 2);  // reset sets the mark to the current RSS, it only grows after
  EXPECT_GT(*now, 1 << 20);
}

TEST(Efficiency, EnergyMeterSaysWhy) {
  EnergyMeter m;
  EXPECT_FALSE(m.source().empty());
  if (m.available()) {
    const double a = m.joules();
    EXPECT_GE(m.joules(), a);
  } else {
    EXPECT_NE(m.source().find("unavailable"), std::string::npos);
  }
}

}  // namespace
}  // namespace vitopt::eval
