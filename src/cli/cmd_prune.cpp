// `vitopt prune`: unstructured (magnitude, global, sensitivity, N:M) or structured (heads,
// neurons, blocks) pruning with optional cubic-schedule steps and fine-tuning, a sweep over
// amounts, and a slimmed (genuinely smaller) model file. A thin wrapper over prune::run_prune.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "compress/prune/prune_job.h"
#include "core/error.h"

namespace vitopt::cli {
namespace {

std::vector<double> parse_amounts(const std::string& s) {
  std::vector<double> out;
  for (const auto& item : split_list(s)) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      core::throw_input("--sweep: expected comma-separated fractions (e.g. 0.1,0.3,0.5), got '{}'",
                        item);
    }
  }
  if (out.empty()) core::throw_input("--sweep: expected at least one fraction, got '{}'", s);
  return out;
}

void print_summary(const nlohmann::json& j) {
  const auto& d = j["dense"];
  const auto& p = j["pruned"];
  fmt::print("pruned {} ({}): params {} -> {} ({:.1f}% fewer), MACs {:.2f}M -> {:.2f}M ({:.1f}% "
             "fewer), nonzero {} ({:.1f}% sparse)\n",
             j["model"].get<std::string>(), fmt::join(j["methods"].get<std::vector<std::string>>(), "+"),
             d["params"].get<int64_t>(), p["params"].get<int64_t>(),
             100 * j["params_reduction"].get<double>(), d["macs"].get<double>() / 1e6,
             p["macs"].get<double>() / 1e6, 100 * j["macs_reduction"].get<double>(),
             p["nonzero_params"].get<int64_t>(), 100 * p["sparsity"].get<double>());
  if (p.contains("accuracy")) {
    fmt::print("top-1 {:.2f}% -> {:.2f}% ({:+.2f} points){}\n",
               100 * d["accuracy"]["top1"].get<double>(), 100 * p["accuracy"]["top1"].get<double>(),
               100 * j["delta_top1"].get<double>(),
               j.contains("pruned_no_finetune")
                   ? fmt::format(" [{:.2f}% before fine-tuning]",
                                 100 * j["pruned_no_finetune"]["top1"].get<double>())
                   : "");
    // Speed: only what an interleaved measurement on the deployment engine supports.
    const auto& s = j["speed"];
    if (s.contains("summary"))
      fmt::print("speed: {}\n", s["summary"].get<std::string>());
    else if (s.contains("note"))
      fmt::print("speed: not claimed: {}\n", s["note"].get<std::string>());
  }
  fmt::print("model: {}\n", j["out"].get<std::string>());
}

}  // namespace

void register_prune(CLI::App& app) {
  auto* cmd = app.add_subcommand("prune", "Prune a model (unstructured, N:M or structured + slim)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    prune::PruneRequest req;
    std::string methods = "heads,neurons", sweep, report_dir;
    std::optional<double> sparsity, ratio;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Model file to prune")->required()->check(CLI::ExistingFile);
  cmd->add_option("--method", f->methods,
                  "magnitude (per-layer |w|), global (one |w| threshold), sensitivity "
                  "(|w*dL/dw|), nm (N:M), or structured heads, neurons, blocks (comma list, e.g. "
                  "heads,neurons)");
  cmd->add_option("--criterion", r.criterion, "Structured importance: l2, taylor or loss");
  auto* sp = cmd->add_option("--sparsity", f->sparsity, "Fraction of weights to remove [0, 1)");
  auto* ra = cmd->add_option("--ratio", f->ratio, "Fraction of heads/neurons/sub-blocks to remove [0, 1)");
  sp->excludes(ra);
  cmd->add_option("--nm", r.nm, "N:M pattern for --method nm (e.g. 2:4)");
  cmd->add_option("--steps", r.steps, "Pruning steps on a cubic schedule (fine-tuning between)")
      ->check(greater_than(0));
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Fine-tuning epochs in total (fractions allowed; 0: none)")
      ->check(at_least(0));
  cmd->add_flag("--per-layer", r.per_layer, "Rank within each layer instead of globally");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--out,-o", r.out, "Pruned model file")->required();
  cmd->add_option("--report-dir", f->report_dir, "Folder for prune.json, fine-tune runs, sweep "
                                                 "(default: <out stem>_prune next to --out)");
  cmd->add_option("--sweep", f->sweep, "Also prune at these amounts and report (e.g. 0.1,0.3,0.5)");
  cmd->add_option("--calib-images", r.calib_images, "Training images for taylor/loss/sensitivity")
      ->check(greater_than(0));
  cmd->add_option("--eval-limit", r.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("!--no-measure", r.measure, "Skip accuracy and speed measurements");
  add_finetune_flags(cmd, r.finetune);
  cmd->add_option("--speed-batch", r.speed_batch, "Batch for the dense-vs-pruned timing")
      ->check(greater_than(0));
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  add_dist_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    if (!start_distributed(f->common)) return;  // this process launched the workers
    f->req.model = model_path_for_job(f->req.model, f->import);
    auto& req = f->req;
    req.methods = split_list(f->methods);
    if (f->sparsity) req.amount = *f->sparsity;
    if (f->ratio) req.amount = *f->ratio;
    if (!f->sweep.empty()) req.sweep = parse_amounts(f->sweep);
    req.report_dir = f->report_dir;
    req.seed = f->common.seed;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = prune::run_prune(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
