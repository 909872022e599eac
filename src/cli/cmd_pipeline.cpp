// `vitopt pipeline [RECIPE.yaml]`: runs a whole recipe (default: configs/default.yaml, or the
// built-in default when that file is not there) into one run folder.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/pipeline.h"

namespace vitopt::cli {

void register_pipeline(CLI::App& app) {
  auto* cmd = app.add_subcommand("pipeline", "Run a recipe end to end (train, evaluate, report)");
  struct Flags {
    CommonFlags common;
    std::string recipe, out;
    std::optional<int> threads, epochs;
    std::optional<size_t> limit;
    bool fresh = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("recipe", f->recipe, "Recipe YAML (default: configs/default.yaml)");
  cmd->add_option("--out,-o", f->out, "Run folder (default: the recipe's `out`, else runs/<name>)");
  cmd->add_option("--threads", f->threads, "Override the recipe's thread count")->check(CLI::NonNegativeNumber);
  cmd->add_option("--epochs", f->epochs, "Override the recipe's training epochs")->check(CLI::PositiveNumber);
  cmd->add_option("--limit", f->limit, "Override the recipe's training subset size");
  cmd->add_flag("--fresh", f->fresh, "Start over even if the run folder has a checkpoint");
  add_output_flags(cmd, f->common);
  cmd->callback([f] {
    std::string path = f->recipe;
    if (path.empty()) {
      path = "configs/default.yaml";
      if (!std::filesystem::exists(path)) {
        const char* src = std::getenv("VITOPT_HOME");
        if (src != nullptr) path = std::string(src) + "/configs/default.yaml";
      }
    }
    auto recipe = pipeline::load_recipe(path);
    if (!f->out.empty()) recipe.out = f->out;
    if (f->threads) recipe.threads = *f->threads;
    if (f->epochs) recipe.train.options.epochs = *f->epochs;
    if (f->limit) recipe.train.limit = *f->limit;
    if (f->fresh) recipe.resume = false;
    pipeline::PipelineOptions opts;
    opts.quiet = f->common.quiet || f->common.json;
    const auto summary = pipeline::run_pipeline(recipe, opts);
    if (f->common.json) {
      print_json(summary);
    } else if (!f->common.quiet) {
      fmt::print("pipeline '{}' done in {:.1f} min: ", recipe.name, summary["seconds"].get<double>() / 60);
      for (const auto& m : summary["models"])
        fmt::print("\n  {:<32} top-1 {:.2f}%", m["label"].get<std::string>(),
                   100 * m["top1"].get<double>());
      fmt::print("\nrun folder: {} (summary.md, summary.json, train/)\n", recipe.out.string());
    }
  });
}

}  // namespace vitopt::cli
