// `vitopt share`: groups of consecutive blocks made to run one set of weights (given or chosen
// from block similarity), then recovered by weight distillation from the unshared model. A thin
// wrapper over lowrank::run_share.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "compress/lowrank/share_job.h"

namespace vitopt::cli {
namespace {

void print_summary(const nlohmann::json& j) {
  std::vector<std::string> groups;
  for (const auto& g : j["log"]["groups"])
    groups.push_back(fmt::format("{}", fmt::join(g["blocks"].get<std::vector<int>>(), "+")));
  const auto& o = j["original"];
  const auto& s = j["shared"];
  fmt::print("shared {}: groups [{}]; params {} -> {} ({:.1f}% fewer), file {:.2f} -> {:.2f} MB\n",
             j["model"].get<std::string>(), fmt::join(groups, ", "), o["params"].get<int64_t>(),
             s["params"].get<int64_t>(), 100 * j["params_reduction"].get<double>(),
             o["file_bytes"].get<double>() / 1e6, s["file_bytes"].get<double>() / 1e6);
  if (s.contains("accuracy")) {
    fmt::print("top-1 {:.2f}% -> {:.2f}% ({:+.2f} points) [{:.2f}% before fine-tuning]\n",
               100 * o["accuracy"]["top1"].get<double>(), 100 * s["accuracy"]["top1"].get<double>(),
               100 * j["delta_top1"].get<double>(),
               100 * j["before_finetune"]["top1"].get<double>());
    fmt::print("runtime weights {:.2f} -> {:.2f} MB, peak buffers {:.2f} -> {:.2f} MB\n",
               o["runtime_memory"]["loaded_bytes"].get<double>() / 1e6,
               s["runtime_memory"]["loaded_bytes"].get<double>() / 1e6,
               o["runtime_memory"]["peak_bytes"].get<double>() / 1e6,
               s["runtime_memory"]["peak_bytes"].get<double>() / 1e6);
    fmt::print("speed: {}\n", j["speed"]["summary"].get<std::string>());
  }
  fmt::print("model: {}\n", j["out"].get<std::string>());
}

}  // namespace

void register_share(CLI::App& app) {
  auto* cmd = app.add_subcommand("share", "Share weights between groups of blocks, then distill");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    lowrank::ShareRequest req;
    std::string what = "attn,mlp", report_dir;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Model file (fp32, unshared)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--groups", r.groups,
                  "Ranges of consecutive blocks sharing one set of weights (0-1,2-3,4-5), or auto "
                  "(from weight and output similarity)");
  cmd->add_option("--num-groups", r.num_groups,
                  "With --groups auto: how many groups (default depth/2)")
      ->check(greater_than(0));
  cmd->add_option(
      "--init", r.init,
      "Shared weights start from the group's central member, its mean, or its first block");
  cmd->add_option("--what", f->what,
                  "Weight matrices the blocks share: attn, mlp or attn,mlp (LayerNorms and biases "
                  "stay per block)");
  cmd->add_option("--delta-rank", r.delta_rank,
                  "Rank of each member's own low-rank delta on every shared Linear, initialized "
                  "from its weight's difference to the group's (0: none)")
      ->check(at_least(0));
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Weight-distillation epochs (fractions allowed; 0: none)")
      ->check(at_least(0));
  cmd->add_option(
      "--distill-modes", r.distill_modes,
      "Teacher terms while fine-tuning: logit, attention, feature (comma list) or none");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--out,-o", r.out, "Shared model file")->required();
  cmd->add_option("--report-dir", f->report_dir,
                  "Folder for share.json and fine-tune runs (default: <out stem>_share)");
  cmd->add_option("--calib-images", r.calib_images, "Training images for the auto grouping")
      ->check(greater_than(0));
  cmd->add_option("--eval-limit", r.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("!--no-measure", r.measure, "Skip accuracy, memory and speed measurements");
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
    req.what = split_list(f->what);
    req.report_dir = f->report_dir;
    req.seed = f->common.seed;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = lowrank::run_share(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
