// Budgets and objectives: the text forms (suffixes, %, aliases) and their errors, relative limits
// resolved against a baseline, hand-computed violations and the score over several budgets.
#include "search/budget.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace vitopt::search {
namespace {

using vitopt::testing::expect_input_error;

TEST(Budget, MetricsInDisplayOrder) {
  EXPECT_EQ(budget_metrics(),
            (std::vector<std::string>{"params", "macs", "size-mb", "latency-ms", "memory-mb"}));
}

TEST(Budget, ParsesSuffixesPercentAndAliases) {
  const Budget b = Budget::parse("params=1.5M,latency-ms=0.3,memory-mb=20,size-mb=1", "--budget");
  EXPECT_EQ(b.text, "params=1.5M,latency-ms=0.3,memory-mb=20,size-mb=1");
  ASSERT_EQ(b.limits.size(), 4u);
  EXPECT_EQ(b.metrics(),
            (std::vector<std::string>{"params", "latency-ms", "memory-mb", "size-mb"}));
  EXPECT_DOUBLE_EQ(b.limits[0].value, 1.5e6);
  EXPECT_DOUBLE_EQ(b.limits[1].value, 0.3);
  EXPECT_DOUBLE_EQ(b.limits[2].value, 20);
  EXPECT_DOUBLE_EQ(b.limits[3].value, 1);
  for (const Limit& l : b.limits) EXPECT_FALSE(l.relative);

  const Budget a = Budget::parse(" latency = 2, size=4k ,memory=1G,macs=3e2K,params=25%", "x");
  EXPECT_EQ(a.metrics(),
            (std::vector<std::string>{"latency-ms", "size-mb", "memory-mb", "macs", "params"}));
  EXPECT_DOUBLE_EQ(a.limits[0].value, 2);
  EXPECT_DOUBLE_EQ(a.limits[1].value, 4e3);
  EXPECT_DOUBLE_EQ(a.limits[2].value, 1e9);
  EXPECT_DOUBLE_EQ(a.limits[3].value, 3e5);
  EXPECT_DOUBLE_EQ(a.limits[4].value, 0.25);
  EXPECT_TRUE(a.limits[4].relative);

  EXPECT_TRUE(Budget::parse("", "x").limits.empty());
  EXPECT_TRUE(Budget::parse("  ", "x").limits.empty());
}

TEST(Budget, BadTextNamesTheSourceAndTheEntry) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"flops=1", {"unknown metric 'flops'", "params", "latency-ms", "latency"}},
      {"params=0", {"params", "positive number", "'0'"}},
      {"params=-1", {"params", "'-1'"}},
      {"params=abc", {"params", "'abc'"}},
      {"params=1x", {"'1x'"}},
      {"params=1M%", {"'1M%'"}},
      {"params=%", {"'%'"}},
      {"params=inf", {"'inf'"}},
      {"params=nan", {"'nan'"}},
      {"params=", {"''"}},
      {"params=1,params=2", {"params", "twice"}},
      {"latency=1,latency-ms=2", {"latency-ms", "twice"}},
      {"params", {"'params'", "metric=value"}},
      {"params=1,", {"entry ''"}},
  };
  for (const auto& [text, parts] : cases) {
    SCOPED_TRACE(text);
    auto all = parts;
    all.push_back("--budget");
    expect_input_error([&] { Budget::parse(text, "--budget"); }, all);
  }
}

TEST(Budget, RelativeLimitsResolveAgainstTheBaseline) {
  const Budget b = Budget::parse("params=25%,latency=1", "x");
  const Budget r = b.resolved({{"params", 2e6}, {"latency-ms", 4}});
  EXPECT_DOUBLE_EQ(r.limits[0].value, 5e5);
  EXPECT_FALSE(r.limits[0].relative);
  EXPECT_DOUBLE_EQ(r.limits[1].value, 1);  // absolute: unchanged
  EXPECT_EQ(r.text, b.text);
  expect_input_error(
      [&] {
        Budget::parse("memory=50%", "x").resolved({{"params", 1}});
      },
      {"memory-mb", "baseline"});
  // Violation needs absolute limits: a relative one left is a caller's bug.
  EXPECT_THROW(b.violation({{"params", 1}, {"latency-ms", 1}}), core::InternalError);
}

TEST(Budget, ViolationIsTheSumOfRelativeExcesses) {
  const Budget b = Budget::parse("params=1M,latency=2", "x");
  EXPECT_DOUBLE_EQ(b.violation({{"params", 1.5e6}, {"latency-ms", 1}}), 0.5);
  EXPECT_DOUBLE_EQ(b.violation({{"params", 0.5e6}, {"latency-ms", 3}}), 0.5);
  EXPECT_DOUBLE_EQ(b.violation({{"params", 2e6}, {"latency-ms", 4}}), 2.0);
  EXPECT_EQ(b.violation({{"params", 1e6}, {"latency-ms", 2}, {"top1", 0.5}}), 0.0);  // at the limit
  EXPECT_TRUE(b.satisfied({{"params", 1}, {"latency-ms", 1}}));
  EXPECT_FALSE(b.satisfied({{"params", 1e6 + 1}, {"latency-ms", 1}}));
  expect_input_error([&] { b.violation({{"params", 1}}); }, {"latency-ms", "not measured"});
  EXPECT_EQ(Budget::parse("", "x").violation({}), 0.0);
}

TEST(Budget, ScoreTakesTheSmallestViolationOverBudgets) {
  const Metrics m = {{"top1", 0.9}, {"params", 1.5e6}, {"latency-ms", 3}, {"size-mb", 2}};
  const std::vector<std::string> objectives = {"top1", "params"};
  const std::vector<Budget> budgets = {
      Budget::parse("latency=2,size=1", "x"),    // 0.5 + 1 = 1.5
      Budget::parse("params=1M", "x"),           // 0.5
      Budget::parse("params=2M,latency=1", "x")  // 0 + 2 = 2
  };
  const Scored s = score(objectives, budgets, m);
  ASSERT_EQ(s.objectives.size(), 2u);
  EXPECT_DOUBLE_EQ(s.objectives[0], 1 - 0.9);  // minimized: the error
  EXPECT_DOUBLE_EQ(s.objectives[1], 1.5e6);
  EXPECT_DOUBLE_EQ(s.violation, 0.5);
  auto with_met = budgets;
  with_met.push_back(Budget::parse("size=3", "x"));  // any budget met: feasible
  EXPECT_EQ(score(objectives, with_met, m).violation, 0.0);
  EXPECT_EQ(score(objectives, {}, m).violation, 0.0);  // no budgets: always feasible
  EXPECT_EQ(objective_values({"latency-ms", "size-mb"}, m), (std::vector<double>{3, 2}));
  expect_input_error([&] { objective_values({"memory-mb"}, m); }, {"memory-mb"});
}

TEST(Objectives, ParseAliasesAndRefuseRepeats) {
  EXPECT_EQ(parse_objectives("top1,latency", "--objectives"),
            (std::vector<std::string>{"top1", "latency-ms"}));
  EXPECT_EQ(parse_objectives(" size , macs,params ,memory", "x"),
            (std::vector<std::string>{"size-mb", "macs", "params", "memory-mb"}));
  EXPECT_EQ(parse_objectives("top1", "x"), (std::vector<std::string>{"top1"}));
  expect_input_error([] { parse_objectives("", "--objectives"); }, {"--objectives", "top1"});
  expect_input_error([] { parse_objectives("top1,acc", "--objectives"); },
                     {"--objectives", "'acc'", "top1", "latency-ms"});
  expect_input_error([] { parse_objectives("top1,top1", "--objectives"); }, {"top1", "twice"});
  expect_input_error([] { parse_objectives("latency,latency-ms", "--objectives"); },
                     {"latency-ms", "twice"});
  expect_input_error([] { parse_objectives("top1,", "--objectives"); }, {"''"});
}

}  // namespace
}  // namespace vitopt::search
