// End to end: evaluate_models on tiny vit-tiny-test models over synthetic data, writing the whole
// report. Checks the files (JSON round trip, one CSV row per model, non-empty PNGs, HTML embeds
// every plot), identities (a model against its own copy agrees 100% with zero deltas), and top-1
// against train::evaluate, an independent implementation.
#include "eval/evaluator.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "io/presets.h"
#include "model/model_file.h"
#include "report/metrics_schema.h"
#include "test_util.h"
#include "train/data_bridge.h"
#include "train/evaluate.h"

namespace vitopt::eval {
namespace {

namespace fs = std::filesystem;

fs::path make_model(const fs::path& path, uint64_t seed, int mlp = 0) {
  auto c = io::preset("vit-tiny-test");
  if (mlp > 0) {
    c.normalize("test");
    for (auto& b : c.blocks) b.mlp_dim = mlp;  // a slimmed variant
  }
  model::ViT vit(c);
  vit->init_weights(seed);
  {
    torch::NoGradGuard no_grad;  // a head bias so predictions are not all one class
    vit->head->bias.copy_(torch::linspace(-0.05, 0.05, c.num_classes));
  }
  exporter::save_model(vit, path);
  return path;
}

TEST(Evaluator, ReportOnTinyModels) {
  testing::TempDir tmp;
  const auto a = make_model(tmp / "a.safetensors", 1);
  fs::create_directories(tmp / "copy");
  fs::copy_file(a, tmp / "copy" / "a.safetensors");
  const auto b = make_model(tmp / "b.safetensors", 2, 32);
  EvalRequest req;
  req.models = {tmp / "copy" / "a.safetensors", b};
  req.baseline = a;
  req.data = "synthetic";
  req.limit = 96;
  req.batch_size = 32;
  req.threads = 1;
  req.latency_runs = 5;
  req.throughput_batch = 8;
  req.size_budget_mb = 1;
  req.latency_budget_ms = 1e-6;  // nothing fits
  req.out_dir = tmp / "report";
  req.quiet = true;
  const auto j = evaluate_models(req);

  // Files and the JSON round trip.
  const auto text = core::read_file_text(tmp / "report" / "metrics.json");
  const auto parsed = nlohmann::json::parse(text);
  EXPECT_EQ(parsed, j);
  const auto r = report::metrics_from_json(parsed);
  EXPECT_EQ(report::to_json(r), j);
  ASSERT_EQ(r.models.size(), 3u);
  EXPECT_EQ(r.data.images, 96);
  EXPECT_EQ(*r.baseline, (tmp.path().filename() / "a").string());  // clashing stems: + folder
  EXPECT_EQ(r.baseline_source, "flag");
  EXPECT_EQ(r.models[1].label, "copy/a");
  EXPECT_EQ(r.models[2].label, "b");

  // Identity: a copy of the baseline agrees on every image, all accuracy deltas 0.
  const auto& copy = *r.models[1].vs_baseline;
  EXPECT_DOUBLE_EQ(copy.agreement, 1.0);
  EXPECT_EQ(copy.deltas.at("top1"), 0.0);
  EXPECT_EQ(copy.deltas.at("ece"), 0.0);
  EXPECT_EQ(copy.only_model_correct + copy.only_baseline_correct, 0);
  for (const auto& d : copy.per_class_accuracy_delta) {
    if (d) {
      EXPECT_EQ(*d, 0.0);
    }
  }
  const auto& other = r.models[2];
  EXPECT_DOUBLE_EQ(other.vs_baseline->deltas.at("top1"),
                   other.classification.top1 - r.models[0].classification.top1);
  EXPECT_LT(other.efficiency.params, r.models[0].efficiency.params);  // slimmed MLP
  EXPECT_DOUBLE_EQ(other.vs_baseline->deltas.at("params"),
                   double(other.efficiency.params - r.models[0].efficiency.params));

  // Efficiency fields are filled with real measurements.
  for (const auto& m : r.models) {
    EXPECT_EQ(m.efficiency.latency.runs, 5);
    EXPECT_GT(m.efficiency.latency.p50_ms, 0);
    EXPECT_LE(m.efficiency.latency.p50_ms, m.efficiency.latency.p99_ms);
    EXPECT_GT(m.efficiency.throughput.images_per_s, 0);
    EXPECT_EQ(m.efficiency.file_bytes, int64_t(fs::file_size(m.path)));
    EXPECT_EQ(m.efficiency.macs, io::count_macs(io::ViTConfig::from_json(m.config)));
    EXPECT_TRUE(m.efficiency.memory.peak_rss_bytes.has_value());
    EXPECT_FALSE(m.efficiency.memory.allocator_peak_bytes.has_value());
    EXPECT_FALSE(m.efficiency.memory.allocator_note.empty());
    EXPECT_EQ(m.efficiency.energy.available, m.efficiency.energy.joules_per_image.has_value());
    EXPECT_EQ(m.precision, "fp32");
  }
  EXPECT_FALSE(r.recommendation.under_latency_budget.has_value());
  double best = 0;
  for (const auto& m : r.models) best = std::max(best, m.classification.top1);
  ASSERT_TRUE(r.recommendation.under_size_budget.has_value());  // every tiny file fits 1 MB
  EXPECT_EQ(r.find(*r.recommendation.under_size_budget)->classification.top1, best);
  EXPECT_EQ(r.find(r.recommendation.most_accurate)->classification.top1, best);
  EXPECT_FALSE(r.pareto_latency.empty());

  // Top-1 agrees with train::evaluate (LibTorch topk) on the same data.
  auto vit = model::load_model(a);
  auto ds = train::open_dataset_for("synthetic", vit->config(), data::Split::Test, 96, 0);
  data::LoaderOptions lo;
  lo.batch_size = 32;
  lo.transform = train::eval_transform(vit->config());
  data::DataLoader loader(ds, lo);
  train::EvalOptions eo;
  eo.quiet = true;
  const auto ref = train::evaluate(vit, loader, eo);
  EXPECT_DOUBLE_EQ(r.models[0].classification.top1, ref.top1);
  EXPECT_NEAR(r.models[0].classification.loss, ref.loss, 1e-5);

  // CSV: header + one row per model.
  std::ifstream csv(tmp / "report" / "metrics.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 4);

  // Every plot exists as a non-empty PNG and report.html embeds it; report.md links it.
  const auto html = core::read_file_text(tmp / "report" / "report.html");
  const auto md = core::read_file_text(tmp / "report" / "report.md");
  for (const char* name : {"accuracy", "latency", "throughput", "params_macs", "pareto_latency",
                           "pareto_size", "reliability", "class_delta", "confusion_0",
                           "confusion_1", "confusion_2", "confidence_0", "confidence_1",
                           "confidence_2"}) {
    ASSERT_TRUE(r.plots.count(name)) << name;
    const auto png = core::read_file_text(tmp / "report" / r.plots.at(name));
    ASSERT_GT(png.size(), 1000u) << name;
    EXPECT_EQ(png.substr(1, 3), "PNG") << name;
    EXPECT_NE(html.find(std::string("<figure id=\"") + name + "\"><img"), std::string::npos)
        << name;
    EXPECT_NE(md.find("(" + r.plots.at(name) + ")"), std::string::npos) << name;
  }
  EXPECT_EQ(html.find("src=\"plots/"), std::string::npos);  // self-contained: no file references
}

TEST(Evaluator, RejectsBadRequests) {
  testing::TempDir tmp;
  EvalRequest req;
  EXPECT_THROW(evaluate_models(req), core::InputError);  // no models
  req.models = {tmp / "missing.safetensors"};
  EXPECT_THROW(evaluate_models(req), core::InputError);
  req.models = {make_model(tmp / "a.safetensors", 1)};
  req.engine = "nope";
  req.data = "synthetic";
  req.limit = 8;
  req.quiet = true;
  try {
    evaluate_models(req);
    FAIL() << "expected an error for an unknown engine";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("torch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vitopt::eval
