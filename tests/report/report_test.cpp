// The report layer without LibTorch: metrics.json schema round trip (exact, incl. nulls), strict
// reading with errors naming the field, CSV quoting, base64, gnuplot quoting and failures, and
// rendering every figure from a hand-made report.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_util.h"
#include "report/gnuplot.h"
#include "report/plots.h"
#include "report/report_writer.h"
#include "report/scalars.h"
#include "test_util.h"

namespace vitopt::report {
namespace {

ModelMetrics model(const std::string& label, double top1, double ms, int64_t bytes) {
  ModelMetrics m;
  m.label = label;
  m.path = "/models/" + label + ".safetensors";
  m.precision = "fp32";
  m.engine = "torch";
  m.config = {{"name", "vit-tiny-test"}, {"depth", 2}, {"embed_dim", 32}};
  auto& c = m.classification;
  c.images = 4;
  c.top1 = top1;
  c.top3 = c.top5 = 1;
  c.loss = 0.693;
  c.macro_classes = 2;
  c.confusion = {{2, 0}, {1, 1}};
  c.never_predicted = {};
  c.per_class = {{0, "cat", 2, 3, 2, 1.0, 2.0 / 3, 1.0, 0.8},
                 {1, "dog", 2, 1, 1, 0.5, 1.0, 0.5, 2.0 / 3}};
  auto& k = m.confidence;
  k.mean_max_prob = 0.7;
  k.mean_max_prob_correct = 0.75;  // incorrect/gap stay null
  k.ece = 0.1;
  for (int b = 0; b < 15; ++b)
    k.reliability.push_back({b / 15.0, (b + 1) / 15.0, b == 10 ? 4 : 0,
                             b == 10 ? std::optional<double>(0.7) : std::nullopt,
                             b == 10 ? std::optional<double>(0.75) : std::nullopt});
  k.histogram_correct.assign(20, 0);
  k.histogram_incorrect.assign(20, 0);
  k.histogram_correct[14] = 3;
  k.histogram_incorrect[12] = 1;
  auto& e = m.efficiency;
  e.params = 1000;
  e.params_per_block = {300, 300};
  e.params_other = 400;
  e.macs = 5000;
  e.flops = 10000;
  e.file_bytes = bytes;
  e.latency = {1, 3, 50, ms, ms * 1.1, ms * 1.3, ms, ms * 0.9, ms * 1.5, 1, {ms}, 0};
  e.throughput = {64, 3, 1000 / ms, ms * 20};
  e.memory = {123456789, true, "VmHWM", std::nullopt, "no allocator statistics"};
  e.energy = {false, std::nullopt, std::nullopt, "", "unavailable: no powercap"};
  e.efficiency_score = 100 * top1 / ms;
  return m;
}

MetricsReport sample() {
  MetricsReport r;
  r.title = "test report";
  r.created = "2024-01-01T00:00:00Z";
  r.data = {"synthetic", "test", "synthetic test (4 images)", 4, 2, {"cat", "dog"}};
  r.settings = {"torch", "cpu", 1, 256, 50, 64};
  r.environment = {{"cpu", "test cpu"}};
  r.models = {model("base", 0.75, 2.0, 2000000), model("small, \"quoted\"", 0.5, 1.0, 500000)};
  r.models[0].is_baseline = true;
  r.baseline = "base";
  r.baseline_source = "flag";
  BaselineComparison b;
  b.baseline = "base";
  b.deltas = {{"top1", -0.25}};
  b.per_class_accuracy_delta = {0.0, std::nullopt};
  b.agreement = 0.75;
  b.both_correct = 2;
  r.models[1].vs_baseline = b;
  r.pareto_latency = {"small, \"quoted\"", "base"};
  r.pareto_size = {"small, \"quoted\"", "base"};
  r.recommendation.most_accurate = "base";
  r.recommendation.fastest = r.recommendation.smallest = r.recommendation.best_efficiency =
      "small, \"quoted\"";
  r.recommendation.latency_budget_ms = 1.5;
  r.recommendation.under_latency_budget = "small, \"quoted\"";
  return r;
}

TEST(Schema, RoundTripIsExact) {
  const auto r = sample();
  const auto j = to_json(r);
  EXPECT_EQ(j["schema"], "vitopt.metrics");
  EXPECT_TRUE(j["models"][0]["vs_baseline"].is_null());
  EXPECT_TRUE(j["models"][0]["confidence"]["gap"].is_null());
  const auto back = metrics_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(back == r);
  EXPECT_EQ(to_json(back), j);
}

TEST(Schema, StrictReadingNamesTheField) {
  auto j = to_json(sample());
  j["models"][1]["classification"].erase("top1");
  try {
    metrics_from_json(j, "m.json");
    FAIL();
  } catch (const core::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("m.json"), std::string::npos) << what;
    EXPECT_NE(what.find("models[1]"), std::string::npos) << what;
    EXPECT_NE(what.find("top1"), std::string::npos) << what;
  }
  j = to_json(sample());
  j["schema_version"] = 99;
  EXPECT_THROW(metrics_from_json(j), core::InputError);
  EXPECT_THROW(metrics_from_json(nlohmann::json::array()), core::InputError);
}

TEST(Csv, OneRowPerModelWithQuoting) {
  const auto csv = metrics_csv(sample());
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_NE(csv.find("\"small, \"\"quoted\"\"\""), std::string::npos) << csv;
  const auto header = csv.substr(0, csv.find('\n'));
  EXPECT_EQ(header.rfind("label,path,precision,engine,is_baseline,top1,top3,top5,loss", 0), 0u);
  // The baseline's delta cells are empty, the other model's are filled.
  EXPECT_NE(csv.find(",base,0.75,-0.25,"), std::string::npos) << csv;
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(Gnuplot, QuoteAndFailures) {
  EXPECT_EQ(gnuplot_quote("it's"), "it''s");
  EXPECT_EQ(gnuplot_quote("a\nb"), "a b");
  testing::TempDir tmp;
  // A quoted title survives a real gnuplot run.
  run_gnuplot("set terminal " + png_terminal() + " size 200,100\nset output 'q.png'\nset title '" +
                  gnuplot_quote("it's \"ok\"") + "'\nplot x\n",
              tmp.path());
  EXPECT_GT(std::filesystem::file_size(tmp / "q.png"), 100u);
  try {
    run_gnuplot("plot $nosuchblock using 1:2\n", tmp.path());
    FAIL();
  } catch (const core::InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("nosuchblock"), std::string::npos) << e.what();
  }
}

TEST(Report, MethodSeriesDropsTheTrailingValue) {
  EXPECT_EQ(method_series("circuits/acdc-0.05"), "circuits/acdc");
  EXPECT_EQ(method_series("circuits/eap-ig-0.9"), "circuits/eap-ig");
  EXPECT_EQ(method_series("prune/heads-neurons-50"), "prune/heads-neurons");
  EXPECT_EQ(method_series("quantize/w8a8"), "quantize/w8a8");
  EXPECT_EQ(method_series("prune/heads-neurons-50-w8a8"), "prune/heads-neurons-50-w8a8");
  EXPECT_EQ(method_series("baseline-"), "baseline-");
}

TEST(Report, AllFiguresAndSelfContainedHtml) {
  testing::TempDir tmp;
  auto r = sample();
  write_report_files(r, tmp.path(), /*quiet=*/true);
  EXPECT_EQ(r.plots.size(), 13u);  // 9 figures + per model (2): confidence and confusion
  EXPECT_TRUE(r.plots.count("confusion_0") && r.plots.count("confusion_1"));
  const auto html = core::read_file_text(tmp / "report.html");
  for (const auto& [name, file] : r.plots) {
    EXPECT_GT(std::filesystem::file_size(tmp / file), 1000u) << name;
    EXPECT_NE(html.find("<figure id=\"" + name + "\"><img alt="), std::string::npos) << name;
  }
  EXPECT_NE(html.find("data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_EQ(metrics_from_json(nlohmann::json::parse(core::read_file_text(tmp / "metrics.json"))),
            r);
  const auto md = core::read_file_text(tmp / "report.md");
  EXPECT_NE(md.find(": confusion matrix (colour: fraction of the true class"), std::string::npos);
  EXPECT_NE(md.find("small, \"quoted\""), std::string::npos);
}

}  // namespace
}  // namespace vitopt::report
