// The recipe's merge: stage: the schedule parsed in any YAML form and checked when the recipe is
// read; in a run it feeds quantization (the merged, quantized model runs merging on the runtime's
// integer kernels) and the report.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/model_header.h"
#include "pipeline/pipeline.h"
#include "pipeline/recipe.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

TEST(MergeStage, ScheduleFormsAndErrors) {
  const auto r = parse_recipe(R"(
merge:
  - {name: a, r: 8}
  - {name: b, r: [4, 4, 2], finetune_epochs: 0.5, finetune_limit: 100}
  - {name: c, r: "decreasing:6"}
)",
                              "m.yaml");
  ASSERT_EQ(r.merge.size(), 3u);
  EXPECT_EQ(r.merge[0].request.r, "8");
  EXPECT_EQ(r.merge[1].request.r, "4,4,2");
  EXPECT_EQ(r.merge[1].request.finetune_epochs, 0.5);
  EXPECT_EQ(r.merge[2].request.r, "decreasing:6");
  for (const char* bad : {"merge:\n  - {name: a, r: -1}\n", "merge:\n  - {name: a, r: lots}\n",
                          "merge:\n  - {name: a, r: 8, ratio: 2}\n"}) {
    EXPECT_THROW(parse_recipe(bad, "bad.yaml"), core::InputError) << bad;
  }
}

TEST(MergeStage, ChainsIntoQuantizationAndTheReport) {
  vitopt::testing::TempDir tmp;
  auto r = parse_recipe(R"(
name: merge
data: synthetic
threads: 1
model: {preset: vit-tiny-test, depth: 2}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32, engine: runtime}
merge:
  - {name: r4, r: 4}
quantize:
  - {name: r4-w8a8, from: merge/r4, wbits: 8, abits: 8, calib_images: 16}
)",
                        "merge.yaml");
  r.out = tmp / "run";
  PipelineOptions opts;
  opts.quiet = true;
  const auto s = run_pipeline(r, opts);
  std::vector<std::string> labels;
  for (const auto& m : s["models"]) labels.push_back(m["label"]);
  for (const char* want : {"merge/r4", "quantize/r4-w8a8"})
    EXPECT_NE(std::find(labels.begin(), labels.end(), want), labels.end()) << want;
  const auto h = io::read_model_header(tmp / "run" / "quantize" / "r4-w8a8.safetensors");
  EXPECT_EQ(h.config.blocks[0].merge_r, 4);
  EXPECT_TRUE(h.quant.has_value());
}

}  // namespace
}  // namespace vitopt::pipeline
