// `vitopt factorize`: a trained model's Linears replaced by low-rank factor pairs (plain or
// activation-aware SVD; ranks by energy, ratio or a parameter budget; kept only where they save
// parameters and run faster on the runtime), optionally fine-tuned with the original as teacher.
// A thin wrapper over lowrank::run_factorize.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "compress/lowrank/factorize_job.h"

namespace vitopt::cli {
namespace {

double top1(const nlohmann::json& j) { return 100 * j["top1"].get<double>(); }

void print_summary(const nlohmann::json& j) {
  int factored = 0, total = 0;
  for (const auto& l : j["log"]["layers"]) {
    ++total;
    factored += l["rank"].get<int>() > 0;
  }
  fmt::print(
      "factorized {} ({}): {} of {} Linears low-rank; Linear weights {} -> {} ({:.1f}%), "
      "params {} -> {} ({:.1f}% fewer), MACs {:.2f}M -> {:.2f}M\n",
      j["model"].get<std::string>(), j["method"].get<std::string>(), factored, total,
      j["linear_params_before"].get<int64_t>(), j["linear_params_after"].get<int64_t>(),
      100.0 * j["linear_params_after"].get<double>() /
          std::max(1.0, j["linear_params_before"].get<double>()),
      j["dense"]["params"].get<int64_t>(), j["factorized"]["params"].get<int64_t>(),
      100 * j["params_reduction"].get<double>(), j["dense"]["macs"].get<double>() / 1e6,
      j["factorized"]["macs"].get<double>() / 1e6);
  if (j["log"].contains("note")) fmt::print("  {}\n", j["log"]["note"].get<std::string>());
  for (const auto& l : j["log"]["layers"])
    if (l.contains("kept_dense"))
      fmt::print("  {} kept dense: {}\n", l["name"].get<std::string>(),
                 l["kept_dense"].get<std::string>());
  if (j["factorized"].contains("accuracy")) {
    fmt::print("top-1 {:.2f}% -> {:.2f}% ({:+.2f} points) [{:.2f}% before fine-tuning, KL {:.3g}",
               top1(j["dense"]["accuracy"]), top1(j["factorized"]["accuracy"]),
               100 * j["delta_top1"].get<double>(), top1(j["before_finetune"]),
               j["kl_before_finetune"].get<double>());
    if (j.contains("plain_svd_same_ranks"))
      fmt::print("; plain SVD at the same ranks {:.2f}%", top1(j["plain_svd_same_ranks"]));
    fmt::print("]\n");
    fmt::print("speed: {}\n", j["speed"]["summary"].get<std::string>());
  }
  fmt::print("model: {}\n", j["out"].get<std::string>());
}

}  // namespace

void register_factorize(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("factorize", "Low-rank factorization of a trained model's Linears");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    lowrank::FactorizeRequest req;
    std::string layers = "qkv,proj,fc1,fc2", report_dir;
    std::optional<double> energy, ratio;
    bool keep_slower = false;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Model file to factorize (fp32)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* en = cmd->add_option("--energy", f->energy,
                             "Rank per layer keeping this fraction of sum(s^2) (default 0.9)");
  auto* ra =
      cmd->add_option("--rank-ratio", f->ratio, "Rank as a fraction of each layer's full rank");
  auto* pb = cmd->add_option("--param-budget", r.param_budget,
                             "Whole-model parameter budget (800000, 1.2M, 60%), allocated across "
                             "layers by measured sensitivity (KL on calibration images)");
  en->excludes(ra)->excludes(pb);
  ra->excludes(pb);
  cmd->add_option("--layers", f->layers, "Linears to factorize: comma list of qkv, proj, fc1, fc2");
  cmd->add_option("--method", r.method,
                  "svd (truncate the weights) or activation-aware (truncate what the calibration "
                  "data passes through: whitened by its input covariance)");
  cmd->add_flag("--keep-slower", f->keep_slower,
                "Also keep factor pairs that run slower than the dense layer on the runtime");
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Fine-tuning epochs (fractions allowed; 0: none)")
      ->check(at_least(0));
  cmd->add_flag("--distill", r.distill,
                "Fine-tune with the original model as teacher (logits and hidden states)");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--out,-o", r.out, "Factorized model file")->required();
  cmd->add_option("--report-dir", f->report_dir,
                  "Folder for factorize.json and fine-tune runs (default: <out stem>_factorize)");
  cmd->add_option("--calib-images", r.calib_images,
                  "Training images for statistics and sensitivity")
      ->check(greater_than(0));
  cmd->add_option("--eval-limit", r.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("!--no-measure", r.measure, "Skip accuracy and speed measurements");
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
    req.layers = split_list(f->layers);
    req.energy = f->energy;
    req.rank_ratio = f->ratio;
    req.require_speedup = !f->keep_slower;
    req.report_dir = f->report_dir;
    req.seed = f->common.seed;
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = lowrank::run_factorize(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
