// The recipe's factorize: and share: stages: parsed strictly, chained with each other and with
// quantization, every model evaluated in the run's report; the shipped recipes parse.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/model_counts.h"
#include "model/model_file.h"
#include "pipeline/pipeline.h"
#include "pipeline/recipe.h"
#include "search/space.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

TEST(LowRankStages, ParseStrictly) {
  const auto r = parse_recipe(R"(
factorize:
  - {name: f, rank_ratio: 0.5, layers: [qkv, fc1], method: activation-aware, require_speedup: false,
     finetune_epochs: 1, distill: true, calib_images: 16}
share:
  - {name: s, groups: "0-1", init: mean, finetune_epochs: 2, distill_modes: [logit, attention]}
)",
                              "lowrank.yaml");
  ASSERT_EQ(r.factorize.size(), 1u);
  EXPECT_EQ(*r.factorize[0].request.rank_ratio, 0.5);
  EXPECT_EQ(r.factorize[0].request.layers, (std::vector<std::string>{"qkv", "fc1"}));
  EXPECT_FALSE(r.factorize[0].request.require_speedup);
  EXPECT_TRUE(r.factorize[0].request.distill);
  ASSERT_EQ(r.share.size(), 1u);
  EXPECT_EQ(r.share[0].request.groups, "0-1");
  EXPECT_EQ(r.share[0].request.distill_modes, "logit,attention");
  EXPECT_THROW(parse_recipe("factorize:\n  - {name: f, ranks: 3}\n", "bad.yaml"), core::InputError);
  EXPECT_THROW(parse_recipe("share:\n  - {name: s, groups: [0, 1]}\n", "bad.yaml"),
               core::InputError);
}

TEST(ShippedRecipes, EveryConfigParses) {
  int parsed = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(vitopt::testing::source_dir() / "configs")) {
    if (entry.path().extension() != ".yaml") continue;
    if (entry.path().filename() == "search-space.yaml") {
      // Not a recipe: the search space `vitopt search` uses by default, spelt out.
      EXPECT_EQ(search::SpaceSpec::from_yaml_file(entry.path()).to_json(),
                search::SpaceSpec{}.to_json());
      continue;
    }
    EXPECT_NO_THROW(load_recipe(entry.path())) << entry.path();
    ++parsed;
  }
  EXPECT_GE(parsed, 2);
  const auto full = load_recipe(vitopt::testing::source_dir() / "configs" / "full.yaml");
  EXPECT_EQ(full.factorize.size(), 1u);
  EXPECT_EQ(full.share.size(), 1u);
}

TEST(LowRankStages, ChainIntoOneReport) {
  vitopt::testing::TempDir tmp;
  auto r = parse_recipe(R"(
name: lowrank
data: synthetic
threads: 1
model: {preset: vit-tiny-test, depth: 4}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32, engine: runtime}
share:
  - {name: pairs, groups: "0-1,2-3", calib_images: 16}
factorize:
  - {name: half, rank_ratio: 0.5, require_speedup: false, calib_images: 16}
  - {name: shared-half, from: share/pairs, rank_ratio: 0.5, require_speedup: false, calib_images: 16}
quantize:
  - {name: half-w8a8, from: factorize/half, wbits: 8, abits: 8, calib_images: 16}
)",
                        "lowrank.yaml");
  r.out = tmp / "run";
  PipelineOptions opts;
  opts.quiet = true;
  const auto s = run_pipeline(r, opts);
  std::vector<std::string> labels;
  for (const auto& m : s["models"]) labels.push_back(m["label"]);
  for (const char* want :
       {"share/pairs", "factorize/half", "factorize/shared-half", "quantize/half-w8a8"})
    EXPECT_NE(std::find(labels.begin(), labels.end(), want), labels.end()) << want;
  const auto shared_half = model::load_model(tmp / "run" / "factorize" / "shared-half.safetensors");
  const auto& c = shared_half->config();
  EXPECT_EQ(c.blocks[1].attn_shared_with, 0);  // sharing carried through the factorization
  EXPECT_EQ(c.blocks[1].mlp_shared_with, 0);
  EXPECT_EQ(c.blocks[0].qkv_rank, 16);
  EXPECT_EQ(c.blocks[1].qkv_rank, 16);
  EXPECT_TRUE(std::filesystem::exists(tmp / "run" / "factorize" / "half" / "factorize.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "run" / "share" / "pairs" / "share.json"));
}

}  // namespace
}  // namespace vitopt::pipeline
