#include "pipeline/pipeline.h"

#include <fmt/format.h>

#include <map>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "core/timer.h"
#include "eval/evaluator.h"
#include "pipeline/compress_stages.h"
#include "pipeline/run_lock.h"
#include "pipeline/stage_state.h"
#include "train/torch_env.h"

namespace vitopt::pipeline {

namespace {

// The evaluator over the models the run produced (the first is the baseline): the full report
// goes to <run>/report/ (metrics.json included).
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
  return eval::evaluate_models(req);
}

// One short entry per model of the report's metrics, for the summary.
nlohmann::json summarize_models(const nlohmann::json& metrics) {
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
  md += fmt::format("Total time: {:.1f} min\n\n", s["seconds"].get<double>() / 60);
  if (!r.from_model.empty()) md += fmt::format("Starts from `{}` (no training).\n\n", r.from_model.string());
  md += "## Stages\n\n| stage | from | status |\n|---|---|---|\n";
  for (const auto& st : s["stages"])
    md += fmt::format("| {} | {} | {} |\n", st["id"].get<std::string>(),
                      st.value("from", "").empty() ? "-" : st.value("from", ""),
                      st["status"].get<std::string>());
  const nlohmann::json history =
      s["train"].is_object() ? s["train"].value("history", nlohmann::json::array()) : nlohmann::json::array();
  if (!history.empty())
    md += "\n## Training\n\n| epoch | train loss | train top-1 | val top-1 | val top-5 | img/s |\n|---|---|---|---|---|---|\n";
  for (const auto& h : history)
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

// One run: the plan, the stages' saved states and the models produced so far.
class Run {
 public:
  Run(const Recipe& r, const PipelineOptions& o, int threads)
      : r_(r), o_(o), threads_(threads), store_(r.out / "stages") {}

  void run_train() {
    const Fingerprint fp{r_.context_canonical + " " + r_.train_canonical, "", code_version()};
    std::string why;
    if (r_.resume) {
      if (const auto s = store_.reusable("train", fp, why)) {
        adopt("train", *s, "reused");
        return;
      }
    }
    train::TrainJob job = r_.train;
    job.options.out_dir = r_.out / "train";
    job.options.seed = r_.seed;
    job.options.device = r_.device;
    job.options.quiet = o_.quiet;
    // An interrupted training continues from its checkpoint only if its inputs are unchanged.
    const auto prev = store_.load("train");
    job.options.resume = r_.resume && prev && prev->fingerprint == fp &&
                         std::filesystem::exists(job.options.out_dir / "checkpoint.safetensors");
    say("train", "", job.options.out_dir,
        job.options.resume ? "resuming its checkpoint" : why.empty() ? "" : "re-running: " + why);
    store_.save("train", {"running", fp, {}, {}, {}});
    const auto trained = train::run_train_job(job);
    StageState done{"done", fp, trained.best_model, file_digest(trained.best_model),
                    train::train_result_json(trained)};
    store_.save("train", done);
    adopt("train", done, "ran");
  }

  void run_compress(const StageNode& n) {
    const auto input = input_of(n);
    const Fingerprint fp{r_.context_canonical + " " + find_stage(r_, n.id).canonical,
                         file_digest(input), code_version()};
    std::string why;
    if (r_.resume) {
      if (const auto s = store_.reusable(n.id, fp, why)) {
        adopt(n.id, *s, "reused", n.from);
        return;
      }
    }
    const auto prev = store_.load(n.id);
    const bool continue_checkpoint =
        r_.resume && prev && prev->status == "running" && prev->fingerprint == fp;
    say(n.id, input.string(), stage_model_path(r_, n.id), why.empty() ? "" : "re-running: " + why);
    store_.save(n.id, {"running", fp, {}, {}, {}});
    const auto result = run_compress_stage(r_, n.id, input, continue_checkpoint, o_.quiet);
    const auto model = stage_model_path(r_, n.id);
    StageState done{"done", fp, model, file_digest(model), result};
    store_.save(n.id, done);
    adopt(n.id, done, "ran", n.from);
  }

  // A stage this command does not run: its earlier output, if any, serves the stages after it.
  void use_earlier(const StageNode& n) {
    const auto s = store_.load(n.id);
    if (s && s->status == "done" && !s->model.empty() && std::filesystem::exists(s->model))
      adopt(n.id, *s, "earlier output (not selected)", n.from);
  }

  void run_eval(const std::vector<StageNode>& plan) {
    std::vector<std::filesystem::path> models;
    std::map<std::string, std::string> labels;
    if (r_.from_model.empty()) {
      if (!outputs_.count("train"))
        core::throw_input("{}: nothing to evaluate: the run folder has no trained model (run "
                          "--mode train first)", r_.out.string());
      add_model(models, labels, outputs_.at("train"), "baseline (best epoch)");
      // The last epoch is its own model only when an earlier epoch validated better.
      const auto& hist = train_json_.value("history", nlohmann::json::array());
      const bool last_is_best = !hist.empty() && hist.back().value("epoch", -1) ==
                                                     train_json_.value("best_epoch", -2);
      if (!last_is_best) add_model(models, labels, train_json_.value("final_model", ""), "last epoch");
    } else {
      add_model(models, labels, r_.from_model, "baseline (given model)");
    }
    std::vector<std::string> missing;
    for (const auto& n : plan) {
      if (n.kind == "train" || n.kind == "eval") continue;
      if (outputs_.count(n.id))
        add_model(models, labels, outputs_.at(n.id), n.id);
      else
        missing.push_back(n.id);
    }
    if (!missing.empty() && !o_.quiet)
      fmt::print(stderr, "[pipeline {}] not in the report (no output yet): {}\n", r_.name,
                 fmt::join(missing, ", "));
    std::string inputs;
    for (const auto& m : models) inputs += labels.at(m.string()) + "=" + file_digest(m) + " ";
    const Fingerprint fp{r_.context_canonical + " " + r_.eval_canonical, inputs, code_version()};
    const auto metrics_file = r_.out / "report" / "metrics.json";
    std::string why;
    if (r_.resume && std::filesystem::exists(metrics_file)) {
      if (store_.reusable("eval", fp, why)) {
        say("eval", "", r_.out / "report", "reused: same models and settings as an earlier run");
        metrics_ = core::json_parse(core::read_file_text(metrics_file), metrics_file.string());
        push_result("eval", "", r_.out / "report", "reused", nlohmann::json(), why);
        return;
      }
    }
    say("eval", "", r_.out / "report", why.empty() ? "" : "re-running: " + why);
    store_.save("eval", {"running", fp, {}, {}, {}});
    metrics_ = evaluate_run_models(models, labels, r_, threads_, o_.quiet);
    store_.save("eval", {"done", fp, {}, {}, nlohmann::json::object()});
    push_result("eval", "", r_.out / "report", "ran", nlohmann::json(), "");
  }

  nlohmann::json stage_results() const { return results_; }
  nlohmann::json train_json() const { return train_json_; }
  nlohmann::json metrics() const { return metrics_; }

 private:
  std::filesystem::path input_of(const StageNode& n) const {
    if (!n.input_stage.empty()) {
      const auto it = outputs_.find(n.input_stage);
      if (it == outputs_.end())
        core::throw_input("stage {} starts from {}, which has no output in {} yet: run it first "
                          "(add it to --only, or run --mode {})", n.id, n.input_stage,
                          r_.out.string(), n.input_stage == "train" ? "train" : "optimize");
      return it->second;
    }
    if (!std::filesystem::exists(n.input_file))
      core::throw_input("{}: {}.from: model file not found: {}", r_.source.string(), n.id,
                        n.input_file.string());
    return n.input_file;
  }

  void adopt(const std::string& id, const StageState& s, const std::string& status,
             const std::string& from = "") {
    outputs_[id] = s.model;
    if (id == "train") train_json_ = s.result;
    if (status != "ran") say(id, "", s.model, status == "reused" ? "reused: done in an earlier run with the same inputs" : status);
    push_result(id, from, s.model, status, s.result, "");
  }

  void push_result(const std::string& id, const std::string& from, const std::filesystem::path& model,
                   const std::string& status, const nlohmann::json& result, const std::string& why) {
    const auto slash = id.find('/');
    nlohmann::json j = {{"id", id},
                        {"stage", id.substr(0, slash)},
                        {"name", slash == std::string::npos ? id : id.substr(slash + 1)},
                        {"from", from},
                        {"model", model.string()},
                        {"status", status},
                        {"reused", status != "ran"}};
    if (!why.empty()) j["note"] = why;
    if (id != "train" && id != "eval") j["result"] = result;
    results_.push_back(std::move(j));
  }

  static void add_model(std::vector<std::filesystem::path>& models,
                        std::map<std::string, std::string>& labels,
                        const std::filesystem::path& model, const std::string& label) {
    models.push_back(model);
    labels[model.string()] = label;
  }

  void say(const std::string& id, const std::string& input, const std::filesystem::path& out,
           const std::string& note) const {
    if (o_.quiet) return;
    fmt::print(stderr, "[pipeline {}] stage {}{} -> {}{}\n", r_.name, id,
               input.empty() ? "" : " (from " + input + ")", out.string(),
               note.empty() ? "" : " (" + note + ")");
  }

  const Recipe& r_;
  const PipelineOptions& o_;
  int threads_;
  StageStore store_;
  std::map<std::string, std::filesystem::path> outputs_;  // stage id -> the model it produced
  nlohmann::json results_ = nlohmann::json::array();
  nlohmann::json train_json_;                              // null when the recipe does not train
  nlohmann::json metrics_;                                 // null when eval did not run
};

}  // namespace

nlohmann::json run_pipeline(const Recipe& recipe, const PipelineOptions& options) {
  core::Stopwatch clock;
  // Check the plan before touching the run folder: a bad `from` or --only costs nothing.
  const auto plan = plan_stages(compress_stage_nodes(recipe), recipe.from_model, recipe.source.string());
  const auto selected = select_stages(plan, options.mode, options.only);
  const int threads = train::configure_threads(recipe.threads);
  std::filesystem::create_directories(recipe.out);
  const RunLock lock(recipe.out);  // before writing anything: a second pipeline stops here
  if (lock.taken_over_from() && !options.quiet)
    fmt::print(stderr, "[pipeline {}] took over {} left by pid {} (no longer running)\n",
               recipe.name, lock.path().string(), *lock.taken_over_from());
  std::string recipe_text = recipe.text;
  if (!recipe.overrides.empty())
    recipe_text += fmt::format("\n# applied with --set: {}\n", fmt::join(recipe.overrides, " "));
  core::write_file_atomic(recipe.out / "recipe.yaml", recipe_text);

  Run run(recipe, options, threads);
  for (const auto& n : plan) {
    const bool chosen = selected.count(n.id) > 0;
    if (n.kind == "eval") {
      if (chosen) run.run_eval(plan);
    } else if (!chosen) {
      run.use_earlier(n);
    } else if (n.kind == "train") {
      run.run_train();
    } else {
      run.run_compress(n);
    }
  }
  const auto metrics = run.metrics();
  nlohmann::json summary = {{"name", recipe.name},
                            {"recipe", recipe.source.string()},
                            {"overrides", recipe.overrides},
                            {"mode", mode_name(options.mode)},
                            {"only", options.only},
                            {"from", recipe.from_model.string()},
                            {"out", recipe.out.string()},
                            {"threads", threads},
                            {"seed", recipe.seed},
                            {"train", run.train_json()},
                            {"stages", run.stage_results()},
                            {"models", metrics.is_null() ? nlohmann::json::array() : summarize_models(metrics)},
                            {"report", (recipe.out / "report").string()},
                            {"seconds", clock.seconds()}};
  core::write_file_atomic(recipe.out / "summary.json", summary.dump(2) + "\n");
  core::write_file_atomic(recipe.out / "summary.md", summary_markdown(recipe, summary));
  return summary;
}

}  // namespace vitopt::pipeline
