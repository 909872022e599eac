// evaluate_models: validates the request, measures every model (measure.cpp), then adds what
// needs several models — baseline deltas, Pareto fronts, budget recommendations — and hands the
// result to the report writers (src/report).
#include "eval/evaluator.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "core/threads.h"
#include "eval/engine.h"
#include "eval/latency.h"
#include "eval/measure.h"
#include "eval/metrics.h"
#include "eval/pareto.h"
#include "report/report_writer.h"
#include "report/scalars.h"
#include "train/torch_env.h"

namespace vitopt::eval {

namespace fs = std::filesystem;

namespace {

void validate(const EvalRequest& r) {
  if (r.models.empty() && !r.baseline)
    core::throw_input("eval: no model files given (--model FILE, --auto-find DIR or --baseline)");
  for (const auto& p : r.models)
    if (!fs::is_regular_file(p)) core::throw_input("--model {}: no such file", p.string());
  if (r.baseline && !fs::is_regular_file(*r.baseline))
    core::throw_input("--baseline {}: no such file", r.baseline->string());
  if (r.split != "test" && r.split != "train")
    core::throw_input("--split: expected test or train, got '{}'", r.split);
  if (r.batch_size < 1) core::throw_input("--batch-size: expected >= 1, got {}", r.batch_size);
  if (r.latency_runs < 1)
    core::throw_input("--latency-runs: expected >= 1, got {}", r.latency_runs);
  if (r.latency_rounds < 1)
    core::throw_input("--latency-rounds: expected >= 1, got {}", r.latency_rounds);
  if (r.throughput_batch < 1)
    core::throw_input("--throughput-batch: expected >= 1, got {}", r.throughput_batch);
  if (r.latency_budget_ms && !(*r.latency_budget_ms > 0))
    core::throw_input("--latency-budget-ms: expected > 0, got {}", *r.latency_budget_ms);
  if (r.size_budget_mb && !(*r.size_budget_mb > 0))
    core::throw_input("--size-budget-mb: expected > 0, got {}", *r.size_budget_mb);
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

// Display labels: the caller's, else the file stem; clashes get parent folders until unique.
std::vector<std::string> make_labels(const std::vector<fs::path>& files,
                                     const std::map<std::string, std::string>& given) {
  std::vector<std::string> labels(files.size());
  std::vector<int> depth(files.size(), 0);
  auto label_at = [&](size_t i) {
    auto it = given.find(files[i].string());
    if (it != given.end()) return it->second;
    fs::path p = files[i].stem();
    fs::path parent = files[i].parent_path();
    for (int d = 0; d < depth[i] && !parent.empty() && parent != parent.root_path(); ++d) {
      p = parent.filename() / p;
      parent = parent.parent_path();
    }
    return p.string();
  };
  for (int round = 0; round < 8; ++round) {
    std::map<std::string, std::vector<size_t>> seen;
    for (size_t i = 0; i < files.size(); ++i) seen[labels[i] = label_at(i)].push_back(i);
    bool clash = false;
    for (auto& [l, idx] : seen)
      if (idx.size() > 1) {
        clash = true;
        for (size_t i : idx) ++depth[i];
      }
    if (!clash) return labels;
  }
  for (size_t i = 0; i < files.size(); ++i) labels[i] = fmt::format("{}#{}", labels[i], i);
  return labels;
}

std::string utc_now() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(line.find_first_not_of(' ', pos + 1));
    }
  return "unknown";
}

void add_baseline_deltas(report::ModelMetrics& m, const MeasuredModel& mm,
                         const report::ModelMetrics& base, const MeasuredModel& bm) {
  auto cmp = compare_predictions(mm.predictions, bm.predictions, mm.labels, m.classification,
                                 base.classification);
  cmp.baseline = base.label;
  const auto a = report::scalar_metrics(m), b = report::scalar_metrics(base);
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].second && b[i].second) cmp.deltas[a[i].first] = *a[i].second - *b[i].second;
  m.vs_baseline = cmp;
}

void compare_across(report::MetricsReport& r, const EvalRequest& req) {
  std::vector<ParetoPoint> lat, size;
  for (const auto& m : r.models) {
    const double acc = m.classification.top1;
    const auto& l = m.efficiency.latency;
    lat.push_back({m.label, acc, l.p50_ms, l.p50_spread_ms});  // ties inside the noise
    size.push_back({m.label, acc, static_cast<double>(m.efficiency.file_bytes) / 1e6, 0.0});
  }
  r.pareto_latency = pareto_front(lat);
  r.pareto_size = pareto_front(size);
  for (auto& m : r.models) {
    m.pareto_latency = std::count(r.pareto_latency.begin(), r.pareto_latency.end(), m.label) > 0;
    m.pareto_size = std::count(r.pareto_size.begin(), r.pareto_size.end(), m.label) > 0;
  }
  auto& rec = r.recommendation;
  rec.latency_budget_ms = req.latency_budget_ms;
  rec.size_budget_mb = req.size_budget_mb;
  if (req.latency_budget_ms)
    rec.under_latency_budget = best_under_budget(lat, *req.latency_budget_ms);
  if (req.size_budget_mb) rec.under_size_budget = best_under_budget(size, *req.size_budget_mb);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  rec.most_accurate = best_under_budget(lat, kInf).value_or("");
  rec.fastest = cheapest(lat, &rec.tied_fastest);
  rec.smallest = cheapest(size, nullptr);
  std::vector<ParetoPoint> score;
  for (const auto& m : r.models) score.push_back({m.label, m.efficiency.efficiency_score, 0, 0});
  rec.best_efficiency = best_under_budget(score, kInf).value_or("");
}

// Batch-1 latency of every model in the same interleaved rounds (latency.h). The engines
// are loaded again, together, after the per-model passes, so each model's peak-memory figure
// above stays its own while the timing sees all models under the same machine load.
void time_latency(std::vector<MeasuredModel>& measured, const std::vector<fs::path>& files,
                  const EvalRequest& req, int threads) {
  const auto plan = plan_rounds(req.latency_runs, req.latency_rounds);
  if (!req.quiet)
    fmt::print(stderr, "[eval] latency: {} model(s) interleaved in {} rounds of {} runs\n",
               files.size(), plan.rounds, plan.runs_per_round);
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<std::vector<float>> logits(files.size());
  std::vector<std::function<void()>> runs;
  for (size_t i = 0; i < files.size(); ++i) {
    engines.push_back(make_engine(req.engine, files[i], engine_options(req, threads)));
    logits[i].resize(static_cast<size_t>(engines.back()->config().num_classes));
  }
  for (size_t i = 0; i < files.size(); ++i)
    runs.push_back([&, i] { engines[i]->run(measured[i].latency_image.data(), 1, logits[i].data()); });
  const auto ms = time_in_rounds(runs, plan);
  for (size_t i = 0; i < files.size(); ++i) {
    auto& eff = measured[i].metrics.efficiency;
    eff.latency = latency_from_rounds(ms[i], plan.warmup, 1);
    eff.efficiency_score =
        eff.latency.p50_ms > 0 ? 100 * measured[i].metrics.classification.top1 / eff.latency.p50_ms
                               : 0;
  }
}

}  // namespace

nlohmann::json evaluate_models(const EvalRequest& req) {
  validate(req);
  const int threads = train::configure_threads(req.threads);

  // Files in order: the baseline first (if given), then the models, without duplicates.
  std::vector<fs::path> files;
  if (req.baseline) files.push_back(*req.baseline);
  for (const auto& p : req.models) {
    const bool dup =
        std::any_of(files.begin(), files.end(), [&](const fs::path& q) { return same_file(p, q); });
    if (!dup) files.push_back(p);
  }
  const auto labels = make_labels(files, req.labels);

  report::MetricsReport r;
  r.title = req.title;
  r.created = utc_now();
  r.settings = {req.engine,     req.device,       threads,
                req.batch_size, req.latency_runs, req.throughput_batch,
                plan_rounds(req.latency_runs, req.latency_rounds).rounds};
  EnergyMeter energy;
  r.environment = {{"cpu", cpu_model()},
                   {"cores", std::to_string(core::available_cores())},
                   {"threads", std::to_string(threads)},
                   {"blas", core::blas_library_name()},
                   {"openblas_core", core::openblas_core()},
                   {"libtorch", TORCH_VERSION},
                   {"energy", energy.source()}};

  std::vector<MeasuredModel> measured;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!req.quiet)
      fmt::print(stderr, "[eval] model {}/{}: {}\n", i + 1, files.size(), files[i].string());
    measured.push_back(measure_model(files[i], labels[i], req, threads, energy));
    const auto& first = measured.front();
    if (measured.back().labels != first.labels)
      core::throw_input(
          "{} and {}: the data differs between the two models ({} vs {}); every "
          "model must take the same images and classes",
          files[0].string(), files[i].string(), first.data.description,
          measured.back().data.description);
  }
  r.data = measured.front().data;
  time_latency(measured, files, req, threads);

  if (files.size() >= 2 || req.baseline) {
    r.baseline = labels[0];
    r.baseline_source = req.baseline ? "flag" : "first model";
  }
  for (auto& mm : measured) r.models.push_back(mm.metrics);
  if (r.baseline) {
    r.models[0].is_baseline = true;
    for (size_t i = 1; i < r.models.size(); ++i)
      add_baseline_deltas(r.models[i], measured[i], r.models[0], measured[0]);
  }
  compare_across(r, req);
  if (!req.out_dir.empty()) report::write_report_files(r, req.out_dir, req.quiet);
  return report::to_json(r);
}

}  // namespace vitopt::eval
