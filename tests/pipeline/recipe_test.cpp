// Recipe parsing (strict keys, types, defaults) and one end-to-end pipeline run on a toy model.
#include "pipeline/recipe.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "pipeline/pipeline.h"
#include "test_util.h"

namespace vitopt::pipeline {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    parse_recipe(yaml, "r.yaml");
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Recipe, ParsesEveryField) {
  const auto r = parse_recipe(R"(
name: quick
out: /tmp/x
seed: 3
threads: 1
data: synthetic
resume: false
model: {preset: vit-tiny-test, num_classes: 7}
train: {epochs: 2, batch_size: 8, lr: 0.002, hflip: true, limit: 64, validate: false}
eval: {batch_size: 16, limit: 10}
)", "r.yaml");
  EXPECT_EQ(r.name, "quick");
  EXPECT_EQ(r.out, "/tmp/x");
  EXPECT_EQ(r.seed, 3u);
  EXPECT_EQ(r.threads, 1);
  EXPECT_FALSE(r.resume);
  EXPECT_EQ(r.train.data, "synthetic");
  EXPECT_EQ(r.train.config.num_classes, 7);
  EXPECT_EQ(r.train.config.embed_dim, 32);
  EXPECT_EQ(r.train.options.epochs, 2);
  EXPECT_EQ(r.train.options.batch_size, 8);
  EXPECT_DOUBLE_EQ(r.train.options.lr, 0.002);
  EXPECT_TRUE(r.train.options.hflip);
  EXPECT_EQ(r.train.limit, 64u);
  EXPECT_FALSE(r.train.validate);
  EXPECT_EQ(r.eval_batch_size, 16);
  EXPECT_EQ(r.eval_limit, 10u);
}

TEST(Recipe, DefaultsAndRunFolderFromName) {
  const auto r = parse_recipe("name: abc\n", "r.yaml");
  EXPECT_EQ(r.out, std::filesystem::path("runs") / "abc");
  EXPECT_EQ(r.train.config.name, "vit-fmnist");
  EXPECT_EQ(r.train.data, "fashion-mnist");
}

TEST(Recipe, RejectsUnknownKeysWithThePath) {
  EXPECT_NE(error_of("train: {epochz: 3}\n").find("train.epochz"), std::string::npos);
  EXPECT_NE(error_of("modle: {}\n").find("modle"), std::string::npos);
  EXPECT_NE(error_of("model: {preset: vit-fmnist, dims: 3}\n").find("model.dims"), std::string::npos);
}

TEST(Recipe, RejectsWrongTypesAndBadValues) {
  EXPECT_NE(error_of("train: {epochs: many}\n").find("train.epochs"), std::string::npos);
  EXPECT_NE(error_of("model: {preset: no-such-model}\n").find("no-such-model"), std::string::npos);
  EXPECT_NE(error_of("name: [unclosed\n").find("r.yaml"), std::string::npos);
  EXPECT_NE(error_of("model: {preset: vit-fmnist, patch_size: 5}\n").find("r.yaml"), std::string::npos);
}

TEST(Pipeline, RunsEndToEndIntoOneFolder) {
  vitopt::testing::TempDir tmp;
  auto r = parse_recipe(R"(
name: toy
data: synthetic
threads: 1
model: {preset: vit-tiny-test}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32, engine: runtime}
quantize:
  - {name: w8a8, wbits: 8, abits: 8, calib_images: 16}
)", "toy.yaml");
  r.out = tmp / "run";
  PipelineOptions opts;
  opts.quiet = true;
  const auto s = run_pipeline(r, opts);
  for (const char* f : {"summary.json", "summary.md", "train/model.safetensors",
                        "train/best.safetensors", "train/metrics.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(tmp / "run" / f)) << f;
  // One epoch: the last epoch is the best model, evaluated once; plus the quantized model, run by
  // the runtime engine (its metrics say so).
  ASSERT_EQ(s["models"].size(), 2u);
  EXPECT_EQ(s["models"][0]["label"], "baseline (best epoch)");
  EXPECT_EQ(s["models"][1]["label"], "quantize/w8a8");
  EXPECT_EQ(s["models"][0]["images"].get<int64_t>(), 32);
  EXPECT_GT(s["models"][0]["params"].get<int64_t>(), 0);
  const auto metrics = core::json_parse(core::read_file_text(tmp / "run" / "report" / "metrics.json"), "metrics.json");
  for (const auto& m : metrics["models"]) EXPECT_EQ(m["engine"], "runtime");
  const auto md = core::read_file_text(tmp / "run" / "summary.md");
  EXPECT_NE(md.find("| quantize/w8a8 |"), std::string::npos);
  EXPECT_THROW(parse_recipe("eval: {engine: onnx}\n", "bad.yaml"), core::InputError);
}

}  // namespace
}  // namespace vitopt::pipeline
