#include "pipeline/pipeline.h"

#include <fmt/format.h>

#include "core/file_util.h"
#include "core/timer.h"
#include "eval/evaluator.h"
#include "pipeline/compress_stages.h"
#include "train/torch_env.h"

namespace vitopt::pipeline {

namespace {

// The evaluator over the models the run produced (the best model is the baseline): the full
// report goes to <run>/report/, and the summary keeps one short entry per model.
nlohmann::json evaluate_run_models(const std::vector<std::filesystem::path>& models,
                                   const std::map<std::string, std::string>& labels,
                                   const Recipe& r, int threads, bool quiet) {
  eval::EvalRequest req;
  req.baseline = models.front();
  req.models.assign(models.begin() + 1, models.end());
  req.data = r.train.data;
  req.split = "test";
  req.limit = r.eval_limit;
  req.batch_size = r.eval_batch_size;
  req.engine = r.eval_engine;
  req.device = r.eval_engine == "runtime" ? "cpu" : r.device;  // the runtime is CPU-only
  req.threads = threads;
  req.seed = r.seed;
  req.workers = r.train.options.workers;
  req.out_dir = r.out / "report";
  req.title = "vitopt run: " + r.name;
  req.labels = labels;
  req.latency_budget_ms = r.latency_budget_ms;
  req.size_budget_mb = r.size_budget_mb;
  req.quiet = quiet;
  const auto metrics = eval::evaluate_models(req);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : metrics["models"]) {
    const auto& c = m["classification"];
    const auto& e = m["efficiency"];
    out.push_back({{"model", m["path"]},
                   {"label", m["label"]},
                   {"data", metrics["data"]["description"]},
                   {"images", c["images"]},
                   {"top1", c["top1"]},
                   {"top5", c["top5"]},
                   {"loss", c["loss"]},
                   {"macro_f1", c["macro_f1"]},
                   {"ece", m["confidence"]["ece"]},
                   {"params", e["params"]},
                   {"macs", e["macs"]},
                   {"file_bytes", e["file_bytes"]},
                   {"latency_p50_ms", e["latency"]["p50_ms"]}});
  }
  return out;
}

std::string summary_markdown(const Recipe& r, const nlohmann::json& s) {
  std::string md = fmt::format("# vitopt run: {}\n\nRecipe: `{}`  \nRun folder: `{}`  \n", r.name,
                               r.source.empty() ? "(built-in default)" : r.source.string(),
                               r.out.string());
  md += fmt::format("Total time: {:.1f} min\n\n## Training\n\n| epoch | train loss | train top-1 | val top-1 | val top-5 | img/s |\n|---|---|---|---|---|---|\n",
                    s["seconds"].get<double>() / 60);
  for (const auto& h : s["train"]["history"])
    md += fmt::format("| {} | {:.4f} | {:.2f}% | {:.2f}% | {:.2f}% | {:.0f} |\n", h["epoch"].get<int>(),
                      h["train_loss"].get<double>(), 100 * h["train_top1"].get<double>(),
                      100 * h.value("val_top1", 0.0), 100 * h.value("val_top5", 0.0),
                      h["train_images_per_s"].get<double>());
  md += "\n## Models\n\n| model | file | top-1 | top-5 | params | MMACs | size (MB) |\n|---|---|---|---|---|---|---|\n";
  for (const auto& m : s["models"])
    md += fmt::format("| {} | `{}` | {:.2f}% | {:.2f}% | {} | {:.1f} | {:.2f} |\n",
                      m["label"].get<std::string>(), m["model"].get<std::string>(),
                      100 * m["top1"].get<double>(), 100 * m["top5"].get<double>(),
                      m["params"].get<int64_t>(), m["macs"].get<int64_t>() / 1e6,
                      m["file_bytes"].get<double>() / 1e6);
  md += "\nFull evaluation (calibration, latency, memory, Pareto, plots): `report/report.md`, "
        "`report/report.html`, `report/metrics.json`.\n";
  return md;
}

}  // namespace

nlohmann::json run_pipeline(const Recipe& recipe, const PipelineOptions& options) {
  core::Stopwatch clock;
  const int threads = train::configure_threads(recipe.threads);
  std::filesystem::create_directories(recipe.out);
  core::write_file_atomic(recipe.out / "recipe.yaml", recipe.text);

  train::TrainJob job = recipe.train;
  job.options.out_dir = recipe.out / "train";
  job.options.seed = recipe.seed;
  job.options.device = recipe.device;
  job.options.quiet = options.quiet;
  job.options.resume = recipe.resume && std::filesystem::exists(job.options.out_dir / "checkpoint.safetensors");
  if (!options.quiet)
    fmt::print(stderr, "[pipeline {}] stage train -> {}{}\n", recipe.name, job.options.out_dir.string(),
               job.options.resume ? " (resuming)" : "");
  const auto trained = train::run_train_job(job);

  // Compression stages start from the best model; every model they make joins the evaluation.
  const auto stages = run_compress_stages(recipe, trained.best_model, options.quiet);
  std::vector<std::filesystem::path> run_models = {trained.best_model};
  std::map<std::string, std::string> labels = {{trained.best_model.string(), "baseline (best epoch)"}};
  // The last epoch is its own model only when an earlier epoch validated better.
  const bool last_is_best = !trained.history.empty() &&
                            trained.history.back().value("epoch", -1) == trained.best_epoch;
  if (!last_is_best) {
    run_models.push_back(trained.final_model);
    labels[trained.final_model.string()] = "last epoch";
  }
  nlohmann::json stage_results = nlohmann::json::array();
  for (const auto& st : stages) {
    run_models.push_back(st.model);
    labels[st.model.string()] = st.stage + "/" + st.name;
    stage_results.push_back({{"stage", st.stage}, {"name", st.name}, {"model", st.model.string()},
                             {"reused", st.reused}, {"result", st.result}});
  }
  if (!options.quiet)
    fmt::print(stderr, "[pipeline {}] stage eval -> {}\n", recipe.name,
               (recipe.out / "report").string());
  const nlohmann::json models = evaluate_run_models(run_models, labels, recipe, threads, options.quiet);
  nlohmann::json summary = {{"name", recipe.name},
                            {"recipe", recipe.source.string()},
                            {"out", recipe.out.string()},
                            {"threads", threads},
                            {"seed", recipe.seed},
                            {"train", train::train_result_json(trained)},
                            {"stages", stage_results},
                            {"models", models},
                            {"report", (recipe.out / "report").string()},
                            {"seconds", clock.seconds()}};
  core::write_file_atomic(recipe.out / "summary.json", summary.dump(2) + "\n");
  core::write_file_atomic(recipe.out / "summary.md", summary_markdown(recipe, summary));
  return summary;
}

}  // namespace vitopt::pipeline
