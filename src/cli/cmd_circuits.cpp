// `vitopt circuits`: the circuit a trained model uses for its task, found by ACDC (one model per
// --threshold) or EAP / EAP-IG (one model per --keep-ratio), each slimmed into a smaller model
// and written with its circuit (JSON) and picture (graphviz). A thin wrapper over
// circuits::run_circuits.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/finetune_flags.h"
#include "compress/circuits/circuits_job.h"

namespace vitopt::cli {
namespace {

double top1(const nlohmann::json& j) { return 100 * j["top1"].get<double>(); }

void print_summary(const nlohmann::json& j) {
  const auto& full = j["full"];
  fmt::print("circuits of {} ({}, {} ablation, metric {}, {} analysis images)\n",
             j["model"].get<std::string>(), j["method"].get<std::string>(),
             j["ablation"].get<std::string>(), j["metric"].get<std::string>(),
             j["analysis_images"].get<int64_t>());
  if (full.contains("accuracy"))
    fmt::print("  full model: top-1 {:.2f}%\n", top1(full["accuracy"]));
  for (const auto& s : j["settings"]) {
    fmt::print(
        "  {}: {} heads, {} neurons kept; params {} -> {}, MACs {:.2f}M -> {:.2f}M; KL {:.4g}",
        s["label"].get<std::string>(), s["kept_heads"].get<int>(), s["kept_neurons"].get<int>(),
        full["params"].get<int64_t>(), s["slimmed"]["params"].get<int64_t>(),
        full["macs"].get<double>() / 1e6, s["slimmed"]["macs"].get<double>() / 1e6,
        s["kl_to_full"].get<double>());
    if (s.contains("before_finetune")) fmt::print("; top-1 {:.2f}%", top1(s["before_finetune"]));
    if (s.contains("after_finetune"))
      fmt::print(" -> {:.2f}% fine-tuned", top1(s["after_finetune"]));
    fmt::print("\n    model {}, picture {}\n", s["model_file"].get<std::string>(),
               s["picture"].get<std::string>());
  }
}

}  // namespace

void register_circuits(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "circuits", "Circuit discovery (ACDC, EAP, EAP-IG): cut out what the task does not need");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    circuits::CircuitsRequest req;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--model,-m", r.model, "Model file (fp32, dense)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--method", r.method, "acdc | eap (needs --use-task-loss) | eap-ig");
  cmd->add_option("--threshold", r.thresholds,
                  "ACDC: keep a node removed if the metric grows by less than this; several "
                  "values (0.01,0.05,0.1) give one model each")
      ->delimiter(',');
  cmd->add_option("--keep-ratio", r.keep_ratios,
                  "EAP/EAP-IG: fraction of heads and neuron groups kept; several values give "
                  "one model each")
      ->delimiter(',');
  cmd->add_option("--level", r.level,
                  "node (heads, sub-blocks, neuron groups) or edge (writer -> q/k/v/MLP/logits "
                  "edges of the residual stream; a node left without edges is removed)");
  cmd->add_option("--ablation", r.ablation,
                  "mean (over the analysis images; folded into biases), zero, or resample "
                  "(another image's activation, of a different class)");
  cmd->add_option("--engine", r.engine,
                  "Node-level ACDC's forwards: auto (the runtime where the ablation folds into "
                  "the slimmed model: mean, zero), runtime, torch");
  cmd->add_option("--analysis-batches", r.analysis_batches,
                  "Batches of training images for the metric and the ablation values");
  cmd->add_option("--analysis-batch-size", r.analysis_batch_size, "Images per analysis batch");
  cmd->add_flag("--use-task-loss", r.use_task_loss,
                "Metric: cross-entropy on the labels instead of KL(full || circuit)");
  cmd->add_option("--ig-steps", r.ig_steps, "EAP-IG: points on the ablated-to-clean path");
  cmd->add_option("--rank", r.rank, "EAP keep ratio over all components (global) or per-type");
  cmd->add_option("--neuron-group", r.neuron_group, "MLP neurons tested and kept together");
  cmd->add_option("--finetune-epochs", r.finetune_epochs,
                  "Fine-tuning epochs per model (fractions allowed; 0: none)");
  cmd->add_option("--data,-d", r.data, "Dataset (see `vitopt train --help`)");
  cmd->add_option("--out,-o", r.report_dir,
                  "Folder for the models (acdc_threshold_0.01.safetensors, ...), circuits "
                  "(.json), pictures (.dot, .svg) and circuits.json")
      ->required();
  cmd->add_option("--eval-limit", r.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("!--no-measure", r.measure, "Skip the test-accuracy measurements");
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
    req.threads = f->common.threads;
    req.device = f->common.device;
    req.quiet = f->common.quiet || f->common.json;
    const auto j = circuits::run_circuits(req);
    if (f->common.json)
      print_json(j);
    else if (!f->common.quiet)
      print_summary(j);
  });
}

}  // namespace vitopt::cli
