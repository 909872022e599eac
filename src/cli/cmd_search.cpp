// `vitopt search`: architecture search over structured pruning, factorization, sharing, token
// merging and quantization under budgets (NSGA-II), the best model per budget fine-tuned and
// evaluated. A thin wrapper over search::run_search.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "search/search_job.h"

namespace vitopt::cli {
namespace {

void print_summary(const nlohmann::json& j) {
  const auto& base = j["baseline"];
  fmt::print("search: {} candidates evaluated ({} built and measured) in {:.0f} s; front of {}\n",
             j["evaluated"].get<size_t>(), j["built"].get<int>(), j["search_seconds"].get<double>(),
             j["front"].size());
  fmt::print("baseline: held-out top-1 {:.2f}%, {:.3f} ms, {:.2f}M params\n",
             100 * base["top1"].get<double>(), base["latency-ms"].get<double>(),
             base["params"].get<double>() / 1e6);
  for (const auto& r : j["returned"]) {
    const auto budget = r["budget"].get<std::string>();
    if (r.contains("error")) {
      fmt::print("budget '{}': {}\n", budget, r["error"].get<std::string>());
      continue;
    }
    const auto& m = r["final_metrics"];
    fmt::print(
        "budget '{}': {} held-out top-1 {:.2f}%, {:.3f} ms, {:.2f}M params, {:.2f} MB "
        "file, {:.2f} MB runtime memory\n",
        budget.empty() ? "none" : budget, r["model"].get<std::string>(),
        100 * m["top1"].get<double>(), m["latency-ms"].get<double>(),
        m["params"].get<double>() / 1e6, m["size-mb"].get<double>(), m["memory-mb"].get<double>());
  }
  fmt::print("front and candidates: {}\n", j["out"].get<std::string>());
}

}  // namespace

void register_search(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "search",
      "Architecture search: pruning, factorization, sharing, merging and quantization "
      "combined under budgets (NSGA-II)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    search::SearchRequest req;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Trained fp32 model file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", r.out_dir, "Output folder (state, CSVs, figure, models, report)")
      ->required();
  cmd->add_option("--space", r.space,
                  "Search-space YAML (default: the built-in space of configs/search-space.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--budget", r.budgets,
                  "Budget set, repeatable: params=1.5M,macs=50M,latency-ms=0.3,memory-mb=20,"
                  "size-mb=1 (k/M/G suffixes or a % of the baseline). Each returns its own model");
  cmd->add_option("--objectives", r.objectives,
                  "Objectives: top1 and any of params, macs, size-mb, latency-ms, memory-mb");
  cmd->add_option("--population", r.evolution.population, "Candidates per generation")
      ->check(at_least(4));
  cmd->add_option("--generations", r.evolution.generations, "Generations")->check(at_least(1));
  cmd->add_option("--mutation", r.evolution.mutation, "Per-gene mutation probability")
      ->check(in_range(0, 1));
  cmd->add_option("--crossover", r.evolution.crossover, "Crossover probability")
      ->check(in_range(0, 1));
  cmd->add_option("--criterion", r.criterion,
                  "Importance order of heads and neurons: taylor, l2, loss or eap (EAP-IG "
                  "scores of the circuits layer)");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--calib-images", r.calib_images,
                  "First training images for importance, means and quantization calibration");
  cmd->add_option("--holdout-images", r.holdout_images,
                  "Last training images on which candidates' accuracy is estimated");
  cmd->add_option("--latency-batch", r.measure.batch, "Batch of the runtime latency")
      ->check(at_least(1));
  cmd->add_option("--latency-threads", r.measure.threads, "Runtime threads for latency")
      ->check(at_least(1));
  cmd->add_option("--latency-runs", r.measure.runs, "Timed runs per candidate (median)")
      ->check(at_least(3));
  cmd->add_flag("!--no-single-techniques", r.single_techniques,
                "Skip evaluating each technique alone for comparison");
  cmd->add_flag("!--no-deliver-singles", r.deliver_singles,
                "Do not build, fine-tune and report each technique's best model under the first "
                "budget");
  cmd->add_option("--student-epochs", r.student_epochs,
                  "Distillation epochs of each student preset of the space (its model.students) "
                  "before the search (fractions allowed)");
  cmd->add_option("--supernet-epochs", r.supernet_epochs,
                  "Supernet fine-tuning of the inherited weights before the search (largest, "
                  "smallest and random structures each step; fractions allowed; 0: none)")
      ->check(at_least(0));
  cmd->add_option("--supernet-random", r.supernet_random,
                  "Random structures per supernet step besides the largest and smallest")
      ->check(at_least(0));
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Fine-tuning epochs of each returned model, distilled from the original "
                  "(fractions allowed; 0: none)")
      ->check(at_least(0));
  cmd->add_option("--distill-modes", r.distill_modes,
                  "Teacher terms while fine-tuning: logit, feature, attention... or none");
  cmd->add_option("--eval-limit", r.eval_limit, "Test images for the final report (0: all)");
  cmd->add_flag("!--no-evaluate", r.evaluate, "Skip the final test-split report");
  add_finetune_flags(cmd, r.finetune);
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
    req.seed = f->common.seed;
    req.evolution.seed = f->common.seed;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = search::run_search(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
