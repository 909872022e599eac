// The recipe's search: stage: options parsed and checked when the recipe is read; in a run the
// model returned for the stage's budget is the stage's output, within the budget, and in the
// report.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/model_counts.h"
#include "io/model_header.h"
#include "pipeline/pipeline.h"
#include "pipeline/recipe.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

TEST(SearchStage, OptionsAndErrors) {
  const auto r = parse_recipe(R"(
search:
  - {name: a, budget: "params=25%,latency-ms=0.3", objectives: [top1, params], population: 8,
     generations: 3, finetune_epochs: 0.5, supernet_epochs: 0.25, deliver_singles: false}
)",
                              "s.yaml");
  ASSERT_EQ(r.search.size(), 1u);
  const auto& q = r.search[0].request;
  ASSERT_EQ(q.budgets.size(), 1u);
  EXPECT_EQ(q.budgets[0], "params=25%,latency-ms=0.3");
  EXPECT_EQ(q.objectives, "top1,params");
  EXPECT_EQ(q.evolution.population, 8);
  EXPECT_EQ(q.evolution.generations, 3);
  EXPECT_EQ(q.supernet_epochs, 0.25);
  EXPECT_FALSE(q.deliver_singles);
  for (const char* bad :
       {"search:\n  - {name: a, population: 2}\n", "search:\n  - {name: a, budget: \"watts=3\"}\n",
        "search:\n  - {name: a, objectives: top1,speed}\n",
        "search:\n  - {name: a, generation: 3}\n"}) {
    EXPECT_THROW(parse_recipe(bad, "bad.yaml"), core::InputError) << bad;
  }
}

TEST(SearchStage, DeliversAModelWithinTheBudgetToTheReport) {
  vitopt::testing::TempDir tmp;
  auto r = parse_recipe(R"(
name: search
data: synthetic
threads: 1
model: {preset: vit-tiny-test, depth: 2}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32, engine: runtime}
search:
  - {name: half, budget: "params=50%", population: 4, generations: 2, calib_images: 16,
     holdout_images: 32, latency_runs: 3, deliver_singles: false}
)",
                        "search.yaml");
  r.out = tmp / "run";
  PipelineOptions opts;
  opts.quiet = true;
  const auto s = run_pipeline(r, opts);
  std::vector<std::string> labels;
  for (const auto& m : s["models"]) labels.push_back(m["label"]);
  EXPECT_NE(std::find(labels.begin(), labels.end(), "search/half"), labels.end());
  const auto base = io::read_model_header(tmp / "run" / "train" / "best.safetensors");
  const auto got = io::read_model_header(tmp / "run" / "search" / "half.safetensors");
  EXPECT_LE(io::count_params(got.config), io::count_params(base.config) / 2);
  EXPECT_TRUE(std::filesystem::exists(tmp / "run" / "search" / "half_search" /
                                      "arch_pareto_top1_latency-ms.csv"));
}

}  // namespace
}  // namespace vitopt::pipeline
