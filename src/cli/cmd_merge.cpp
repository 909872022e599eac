// `vitopt merge`: token merging (ToMe) set on a trained model, per block from a schedule,
// optionally fine-tuned with merging on. A thin wrapper over merge::run_merge.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "compress/merge/merge_job.h"

namespace vitopt::cli {
namespace {

void print_summary(const nlohmann::json& j) {
  const auto& o = j["original"];
  const auto& m = j["merged"];
  fmt::print("merged {}: r per block [{}], tokens per block [{}]; MACs {:.2f}M -> {:.2f}M ({:.1f}% fewer)\n",
             j["model"].get<std::string>(), fmt::join(m["merged_per_block"].get<std::vector<int>>(), ","),
             fmt::join(m["tokens"].get<std::vector<int>>(), ","), o["macs"].get<double>() / 1e6,
             m["macs"].get<double>() / 1e6, 100 * j["macs_reduction"].get<double>());
  if (m.contains("accuracy")) {
    fmt::print("top-1 {:.2f}% -> {:.2f}% ({:+.2f} points)", 100 * o["accuracy"]["top1"].get<double>(),
               100 * m["accuracy"]["top1"].get<double>(), 100 * j["delta_top1"].get<double>());
    if (j.contains("before_finetune"))
      fmt::print(" [{:.2f}% before fine-tuning]", 100 * j["before_finetune"]["top1"].get<double>());
    fmt::print("\nspeed: {}\n", j["speed"]["summary"].get<std::string>());
  }
  fmt::print("model: {}\n", j["out"].get<std::string>());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "Token merging (ToMe): fewer tokens per block, optionally fine-tuned");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    merge::MergeRequest req;
    std::string report_dir;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Model file (any precision; fine-tuning needs fp32)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--r,-r", r.r,
                  "Tokens merged per block: 8 (every block), 8,8,4,... (one per block), "
                  "decreasing[:R] (front-loaded, same total as R), off. Each block merges at most "
                  "half its non-class tokens");
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Epochs of fine-tuning with merging on (fractions allowed; 0: none, the file "
                  "is rewritten with its tensors unchanged)")
      ->check(at_least(0));
  cmd->add_option("--distill-modes", r.distill_modes,
                  "Teacher terms while fine-tuning (the unmerged model): logit or none");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--out,-o", r.out, "Merged model file")->required();
  cmd->add_option("--report-dir", f->report_dir,
                  "Folder for merge.json and the fine-tune run (default: <out stem>_merge)");
  cmd->add_option("--eval-limit", r.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("!--no-measure", r.measure, "Skip the accuracy and speed measurements");
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
    req.report_dir = f->report_dir;
    req.seed = f->common.seed;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = merge::run_merge(req);
    if (!train::dist::is_root()) return;
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
