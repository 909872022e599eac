// QAT inside the pipeline: a recipe's quantize stage with qat_epochs runs quantization-aware
// fine-tuning (its record has the QAT history), produces a different model from the same stage
// without QAT, and the run's report evaluates it as an int4 model with an accuracy.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "core/json_util.h"
#include "pipeline/pipeline.h"
#include "pipeline/recipe.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

TEST(PipelineQat, QatStageTrainsAndIsEvaluated) {
  vitopt::testing::TempDir tmp;
  auto r = parse_recipe(R"(
name: qat
data: synthetic
threads: 1
model: {preset: vit-tiny-test}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32}
quantize:
  - {name: w4a8-ptq, wbits: 4, abits: 8, calib_images: 16}
  - {name: w4a8-qat, wbits: 4, abits: 8, calib_images: 16, qat_epochs: 1, qat_images: 256, qat_lr: 0.001}
)", "qat.yaml");
  r.out = tmp / "run";
  PipelineOptions opts;
  opts.quiet = true;
  const auto s = run_pipeline(r, opts);
  // The summary lists every stage of the run (train, the compression stages, eval) by id.
  nlohmann::json ptq, qat;
  for (const auto& st : s["stages"]) {
    if (st["id"] == "quantize/w4a8-ptq") ptq = st;
    if (st["id"] == "quantize/w4a8-qat") qat = st;
  }
  ASSERT_TRUE(ptq.is_object()) << s["stages"].dump();
  ASSERT_TRUE(qat.is_object()) << s["stages"].dump();
  EXPECT_EQ(qat["status"], "ran");
  EXPECT_FALSE(ptq["result"].contains("qat"));
  ASSERT_TRUE(qat["result"].contains("qat")) << qat.dump();
  EXPECT_EQ(qat["result"]["qat"]["epochs"], 1);
  const auto& history = qat["result"]["qat"]["history"];
  ASSERT_FALSE(history.empty()) << qat.dump();
  EXPECT_TRUE(std::isfinite(history.front()["train_loss"].get<double>())) << history.dump();
  // Fine-tuning moved the weights: the files differ although calibration was identical.
  EXPECT_NE(core::read_file_bytes(ptq["model"].get<std::string>()),
            core::read_file_bytes(qat["model"].get<std::string>()));
  // The report evaluated it as a 4-bit model with an accuracy.
  const auto metrics = core::json_parse(
      core::read_file_text(tmp / "run" / "report" / "metrics.json"), "metrics.json");
  bool found = false;
  for (const auto& m : metrics["models"]) {
    if (m["label"] != "quantize/w4a8-qat") continue;
    found = true;
    EXPECT_EQ(m["precision"], "int4");
    EXPECT_EQ(m["classification"]["images"], 32);
    EXPECT_GE(m["classification"]["top1"].get<double>(), 0.0);
  }
  EXPECT_TRUE(found) << metrics["models"].dump();
}

}  // namespace
}  // namespace vitopt::pipeline
