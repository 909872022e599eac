// `vitopt eval`: evaluates one or many model files on the same data through the evaluator
// (src/eval) and, with --out, writes metrics.json, metrics.csv, report.md/.html and plots/.
// Flag parsing and printing only; everything measured lives in eval::evaluate_models.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "eval/evaluator.h"

namespace vitopt::cli {

namespace {

namespace fs = std::filesystem;

// Every *.safetensors under `dir` (recursively, sorted), except training checkpoints.
std::vector<fs::path> find_models(const fs::path& dir) {
  if (!fs::is_directory(dir)) core::throw_input("--auto-find {}: not a folder", dir.string());
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
    if (e.path().filename() == "checkpoint.safetensors") continue;  // optimizer state, not a model
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  if (out.empty())
    core::throw_input(
        "--auto-find {}: no *.safetensors model files found (checkpoint.safetensors "
        "is skipped)",
        dir.string());
  return out;
}

void print_table(const nlohmann::json& j) {
  fmt::print("{:<28} {:>8} {:>8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8}\n", "model", "top-1",
             "top-5", "F1", "ECE", "params", "size MB", "p50 ms", "img/s", "Δtop-1");
  for (const auto& m : j["models"]) {
    const auto& c = m["classification"];
    const auto& e = m["efficiency"];
    std::string delta = m["is_baseline"].get<bool>() ? "base" : "";
    if (!m["vs_baseline"].is_null())
      delta = fmt::format("{:+.2f}", 100 * m["vs_baseline"]["deltas"].value("top1", 0.0));
    fmt::print(
        "{:<28} {:>7.2f}% {:>7.2f}% {:>8.4f} {:>7.4f} {:>10} {:>9.2f} {:>9.3f} {:>9.0f} {:>8}\n",
        m["label"].get<std::string>(), 100 * c["top1"].get<double>(), 100 * c["top5"].get<double>(),
        c["macro_f1"].get<double>(), m["confidence"]["ece"].get<double>(),
        e["params"].get<int64_t>(), e["file_bytes"].get<double>() / 1e6,
        e["latency"]["p50_ms"].get<double>(), e["throughput"]["images_per_s"].get<double>(), delta);
  }
  const auto& r = j["recommendation"];
  fmt::print("most accurate: {}  fastest: {}  smallest: {}  best accuracy/ms: {}\n",
             r["most_accurate"].get<std::string>(), r["fastest"].get<std::string>(),
             r["smallest"].get<std::string>(), r["best_efficiency"].get<std::string>());
  if (!r["latency_budget_ms"].is_null())
    fmt::print("under {} ms: {}\n", r["latency_budget_ms"].get<double>(),
               r["under_latency_budget"].is_null() ? "no model fits"
                                                   : r["under_latency_budget"].get<std::string>());
  if (!r["size_budget_mb"].is_null())
    fmt::print("under {} MB: {}\n", r["size_budget_mb"].get<double>(),
               r["under_size_budget"].is_null() ? "no model fits"
                                                : r["under_size_budget"].get<std::string>());
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate and compare model files on a dataset; --out writes the full report");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::vector<std::string> models;
    std::string auto_find, baseline, out, title = "vitopt evaluation";
    eval::EvalRequest req;
    std::optional<double> latency_budget, size_budget;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", f->models, "Model file (repeat for several)")
      ->check(CLI::ExistingFile);
  cmd->add_option(
         "--auto-find", f->auto_find,
         "Evaluate every *.safetensors model under this folder (not checkpoint.safetensors)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--baseline", f->baseline,
                  "Model the others are compared with (default: the first model)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--split", r.split, "test or train")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--batch-size,-b", r.batch_size, "Batch size of the accuracy pass")
      ->check(greater_than(0));
  cmd->add_option("--limit", r.limit, "Evaluate only the first N images");
  cmd->add_option("--workers", r.workers, "Data loader threads")->check(CLI::Range(1, 64));
  cmd->add_option("--out,-o", f->out,
                  "Folder for metrics.json, metrics.csv, report.md, report.html and plots/");
  cmd->add_option("--latency-budget-ms", f->latency_budget,
                  "Recommend the most accurate model with p50 latency under this")
      ->check(greater_than(0));
  cmd->add_option("--size-budget-mb", f->size_budget,
                  "Recommend the most accurate model whose file is under this many MB")
      ->check(greater_than(0));
  cmd->add_option("--latency-runs", r.latency_runs,
                  "Timed batch-1 runs per model after warm-up (>= 50 for the report)")
      ->check(greater_than(0));
  cmd->add_option("--latency-rounds", r.latency_rounds,
                  "Interleaved rounds the latency runs are split into (all models each round); "
                  "the p50's spread over rounds decides ties")
      ->check(greater_than(0));
  cmd->add_option("--throughput-batch", r.throughput_batch, "Batch size for the throughput measure")
      ->check(greater_than(0));
  cmd->add_option("--engine", r.engine,
                  "Inference engine: torch (LibTorch; quantized files run as exact simulation) "
                  "or runtime (the dependency-free engine: integer kernels, CPU only)")
      ->check(CLI::IsMember({"torch", "runtime"}));
  cmd->add_option("--title", f->title, "Report title");
  add_import_flags(cmd, f->import);
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    auto& req = f->req;
    for (const auto& m : f->models) req.models.emplace_back(m);
    if (!f->auto_find.empty())
      for (const auto& p : find_models(f->auto_find)) req.models.push_back(p);
    if (req.models.empty() && f->baseline.empty())
      core::throw_input("eval: give --model FILE (repeatable), --auto-find DIR or --baseline FILE");
    if (!f->baseline.empty()) req.baseline = fs::path(f->baseline);
    if (!f->out.empty()) req.out_dir = f->out;
    req.latency_budget_ms = f->latency_budget;
    req.size_budget_mb = f->size_budget;
    req.title = f->title;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.seed = f->common.seed;
    req.quiet = f->common.quiet || f->common.json;
    req.import_heads = f->import.heads;
    req.import_mean = f->import.mean;
    req.import_std = f->import.std;
    req.merge_r = f->import.merge_r;
    const auto j = eval::evaluate_models(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_table(j);
  });
}

}  // namespace vitopt::cli
