// The evaluator: measures one or many model files the same way on the same data (classification,
// confidence/calibration, efficiency), compares them with a baseline and with each other (Pareto
// fronts, budget recommendations), and writes metrics.json, metrics.csv, report.md/.html and plots.
// Everything `vitopt eval`, the pipeline and the compression sweeps report goes through here.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vitopt::eval {

struct EvalRequest {
  std::vector<std::filesystem::path> models;      // model files (fp32, quantized, pruned...)
  std::optional<std::filesystem::path> baseline;  // deltas vs this one (also evaluated)
  std::string data = "fashion-mnist";             // dataset spec as for `vitopt train --data`
  std::string split = "test";
  size_t limit = 0;  // first N images (0: all)
  int64_t batch_size = 256;
  std::string device = "cpu";
  std::string engine = "torch";  // "torch" or "runtime"
  int threads = 0;
  std::filesystem::path out_dir;  // metrics.json, metrics.csv, report.md/.html, plots/
  std::optional<double> latency_budget_ms, size_budget_mb;
  int latency_runs = 50;  // timed batch-1 runs after warm-up, per model over all rounds
  int latency_rounds = 5;  // interleaved round-robin rounds the runs are split into
  int64_t throughput_batch = 64;
  std::string title = "vitopt evaluation";
  std::map<std::string, std::string> labels;  // optional display label per model path
  bool quiet = false;
  // Additions beyond the fixed API (defaults keep every caller valid):
  uint64_t seed = 0;                // synthetic data pixels
  int workers = 2;                  // data loader threads
  std::optional<int> import_heads;  // hints for timm files without metadata
  std::vector<float> import_mean, import_std;
  std::optional<std::string> merge_r;  // token-merging schedule replacing the file's (--merge-r)
};

// Evaluates every model (and the baseline) and returns metrics.json; when out_dir is not empty
// also writes metrics.json, metrics.csv, report.md, report.html and plots/ there. Without a
// baseline and with two or more models, the first model is the baseline for the deltas.
nlohmann::json evaluate_models(const EvalRequest& request);

}  // namespace vitopt::eval
