// Recipe parsing (strict keys, types, defaults) and one end-to-end pipeline run on a toy model.
#include "pipeline/recipe.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "pipeline/pipeline.h"
#include "pipeline/stage_state.h"
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

std::map<std::string, std::string> statuses(const nlohmann::json& summary) {
  std::map<std::string, std::string> out;
  for (const auto& st : summary["stages"]) out[st["id"]] = st["status"];
  return out;
}

TEST(Pipeline, ChainedStagesAndResumeRedoesOnlyWhatChanged) {
  vitopt::testing::TempDir tmp;
  const std::string yaml = R"(
name: chain
data: synthetic
threads: 1
model: {preset: vit-tiny-test}
train: {epochs: 1, batch_size: 16, limit: 64, val_limit: 32, workers: 1}
eval: {limit: 32, engine: runtime}
quantize:
  - {name: hn-w8a8, from: prune/hn, wbits: 8, abits: 8, granularity: tensor, calib_images: 16}
prune:
  - {name: hn, methods: [heads, neurons], amount: 0.5, calib_images: 16}
)";
  auto run = [&](const std::vector<std::string>& sets, Mode mode = Mode::kAll,
                 std::vector<std::string> only = {}) {
    std::vector<Override> o;
    for (const auto& s : sets) o.push_back(parse_override(s));
    auto r = parse_recipe(yaml, "chain.yaml", o);
    r.out = tmp / "run";
    PipelineOptions opts;
    opts.quiet = true;
    opts.mode = mode;
    opts.only = std::move(only);
    return run_pipeline(r, opts);
  };
  using M = std::map<std::string, std::string>;
  auto s = run({});
  EXPECT_EQ(statuses(s), (M{{"train", "ran"}, {"prune/hn", "ran"}, {"quantize/hn-w8a8", "ran"},
                            {"eval", "ran"}}));
  ASSERT_EQ(s["models"].size(), 3u);
  EXPECT_EQ(s["models"][2]["label"], "quantize/hn-w8a8");
  // The chained model is the pruned one quantized: the pruned parameter count, a smaller file.
  EXPECT_EQ(s["models"][2]["params"], s["models"][1]["params"]);
  EXPECT_LT(s["models"][1]["params"].get<int64_t>(), s["models"][0]["params"].get<int64_t>());
  EXPECT_LT(s["models"][2]["file_bytes"].get<double>(), s["models"][1]["file_bytes"].get<double>());
  const auto q = tmp / "run" / "quantize" / "hn-w8a8.safetensors";
  const auto q_digest = file_digest(q);

  s = run({});  // nothing changed: everything reused, the report too
  EXPECT_EQ(statuses(s), (M{{"train", "reused"}, {"prune/hn", "reused"},
                            {"quantize/hn-w8a8", "reused"}, {"eval", "reused"}}));
  EXPECT_EQ(s["models"].size(), 3u);
  EXPECT_EQ(file_digest(q), q_digest);

  s = run({"quantize.hn-w8a8.granularity=channel"});  // only the quantize section changed
  EXPECT_EQ(statuses(s), (M{{"train", "reused"}, {"prune/hn", "reused"},
                            {"quantize/hn-w8a8", "ran"}, {"eval", "ran"}}));
  EXPECT_NE(file_digest(q), q_digest);

  s = run({"quantize.hn-w8a8.granularity=channel", "prune.hn.amount=0.25"});  // its input changes
  EXPECT_EQ(statuses(s), (M{{"train", "reused"}, {"prune/hn", "ran"}, {"quantize/hn-w8a8", "ran"},
                            {"eval", "ran"}}));

  s = run({}, Mode::kOptimize, {"quantize"});  // back to the recipe's values, quantize alone
  EXPECT_EQ(statuses(s), (M{{"train", "earlier output (not selected)"},
                            {"prune/hn", "earlier output (not selected)"},
                            {"quantize/hn-w8a8", "ran"}}));
  EXPECT_TRUE(s["models"].empty());  // no eval in this mode
  // The prune stage's output is still the amount-0.25 model, so this quantized file differs
  // from the first run's (the same recipe values, another input).
  EXPECT_NE(file_digest(q), q_digest);

  // A recipe that starts from an existing model: no training stage.
  auto r = parse_recipe("data: synthetic\nthreads: 1\nfrom: " +
                            (tmp / "run" / "train" / "best.safetensors").string() +
                            "\neval: {limit: 32, engine: runtime}\n"
                            "quantize: [{name: w8, wbits: 8, abits: 8, calib_images: 16}]\n",
                        "from.yaml");
  r.out = tmp / "from-run";
  PipelineOptions opts;
  opts.quiet = true;
  s = run_pipeline(r, opts);
  EXPECT_EQ(statuses(s), (M{{"quantize/w8", "ran"}, {"eval", "ran"}}));
  ASSERT_EQ(s["models"].size(), 2u);
  EXPECT_EQ(s["models"][0]["label"], "baseline (given model)");
  EXPECT_FALSE(std::filesystem::exists(tmp / "from-run" / "train"));
}

}  // namespace
}  // namespace vitopt::pipeline
