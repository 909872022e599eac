// `vitopt pipeline [RECIPE.yaml]`: runs a whole recipe (default: configs/default.yaml, or the
// built-in default when that file is not there) into one run folder; --mode/--only pick stages,
// --set overrides any recipe value, --model/--skip-training start from an existing model.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "pipeline/pipeline.h"

namespace vitopt::cli {

void register_pipeline(CLI::App& app) {
  auto* cmd = app.add_subcommand("pipeline", "Run a recipe end to end (train, compress, evaluate, report)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::string recipe, out, mode = "all", model;
    std::optional<int> threads, epochs;
    std::optional<size_t> limit;
    std::vector<std::string> only, sets;
    bool fresh = false, skip_training = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("recipe", f->recipe, "Recipe YAML (default: configs/default.yaml)");
  cmd->add_option("--out,-o", f->out, "Run folder (default: the recipe's `out`, else runs/<name>)");
  cmd->add_option("--mode", f->mode,
                  "Stages to run: train, optimize (compression stages), evaluate (report), all")
      ->check(CLI::IsMember({"train", "optimize", "evaluate", "all"}));
  cmd->add_option("--only", f->only,
                  "Run only these stages (ids like prune/global-50, a kind like prune, or train, "
                  "eval); the others' earlier outputs are used")
      ->delimiter(',');
  cmd->add_option("--set", f->sets,
                  "Override a recipe value: key.path=value (repeatable; list entries by name, e.g. "
                  "prune.global-50.amount=0.4, train.epochs=3, prune.heads-neurons-50.methods=[heads])");
  cmd->add_option("--model", f->model, "Start from this model file instead of training (the recipe's `from`)");
  cmd->add_flag("--skip-training", f->skip_training,
                "No training stage: start from --model FILE or the recipe's `from`");
  cmd->add_option("--threads", f->threads, "Override the recipe's thread count")->check(at_least(0));
  cmd->add_option("--epochs", f->epochs, "Override the recipe's training epochs")->check(greater_than(0));
  cmd->add_option("--limit", f->limit, "Override the recipe's training subset size");
  cmd->add_flag("--fresh", f->fresh, "Start over: redo every stage even if the run folder has its output");
  add_output_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    if (!f->model.empty()) f->model = model_path_for_job(f->model, f->import);
    std::string path = f->recipe;
    if (path.empty()) {
      path = "configs/default.yaml";
      if (!std::filesystem::exists(path)) {
        const char* src = std::getenv("VITOPT_HOME");
        if (src != nullptr) path = std::string(src) + "/configs/default.yaml";
      }
    }
    // The dedicated flags are --set shorthands, so they reach the stages' fingerprints too.
    std::vector<pipeline::Override> overrides;
    auto add = [&](const std::string& text) { overrides.push_back(pipeline::parse_override(text)); };
    if (!f->out.empty()) add("out=" + f->out);
    if (f->threads) add(fmt::format("threads={}", *f->threads));
    if (f->epochs) add(fmt::format("train.epochs={}", *f->epochs));
    if (f->limit) add(fmt::format("train.limit={}", *f->limit));
    if (!f->model.empty()) add("from=" + f->model);
    if (f->fresh) add("resume=false");
    for (const auto& s : f->sets) add(s);
    const auto recipe = pipeline::load_recipe(path, overrides);
    if (f->skip_training && recipe.from_model.empty())
      core::throw_input("--skip-training needs the model to start from: --model FILE, or `from: "
                        "FILE` in {}", path);
    pipeline::PipelineOptions opts;
    opts.quiet = f->common.quiet || f->common.json;
    opts.mode = pipeline::parse_mode(f->mode);
    opts.only = f->only;
    const auto summary = pipeline::run_pipeline(recipe, opts);
    if (f->common.json) {
      print_json(summary);
    } else if (!f->common.quiet) {
      fmt::print("pipeline '{}' ({}) done in {:.1f} min: ", recipe.name, f->mode,
                 summary["seconds"].get<double>() / 60);
      for (const auto& st : summary["stages"])
        fmt::print("\n  stage {:<36} {}", st["id"].get<std::string>(), st["status"].get<std::string>());
      for (const auto& m : summary["models"])
        fmt::print("\n  {:<38} top-1 {:.2f}%", m["label"].get<std::string>(),
                   100 * m["top1"].get<double>());
      fmt::print("\nrun folder: {} (summary.md, summary.json, report/)\n", recipe.out.string());
    }
  });
}

}  // namespace vitopt::cli
