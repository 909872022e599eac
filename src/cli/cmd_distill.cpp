// `vitopt distill`: teacher → student knowledge distillation (logit, hard, token, feature,
// attention modes and their combinations). Each --mode is one training run; several runs (e.g.
// --mode none --mode logit --mode token) are trained in turn and compared with the teacher.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/distill/distill_job.h"
#include "train/torch_env.h"

namespace vitopt::cli {

// Defined in cmd_train.cpp: the training-loop flags (epochs, batch size, lr, schedule, ...).
void add_train_option_flags(CLI::App* cmd, train::TrainOptions& o);

void register_distill(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "distill", "Distil a teacher model into a smaller student (one run per --mode, compared)");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    distill::DistillRequest req;
    std::vector<std::string> modes;
    std::string layer_map;
    std::string out;
    bool baseline = false, no_val = false, no_report = false, rerun = false;
  };
  auto f = std::make_shared<Flags>();
  auto& r = f->req;
  cmd->add_option("--teacher,-t", r.teacher, "Teacher model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--student,-s", r.student,
                  "Student: a preset (vit-fmnist-student), a ViTConfig .json, or a model file to "
                  "start from")
      ->capture_default_str();
  cmd->add_option("--mode", f->modes,
                  "Mode set for one run: logit|hard|token|feature|attention, comma-separated to "
                  "combine (e.g. logit,attention), or none (student alone). Repeat for several "
                  "runs, compared at the end")
      ->default_str("logit,attention");
  cmd->add_flag("--baseline", f->baseline,
                "Also train the student without a teacher (same epochs and seed) for comparison");
  cmd->add_option("--temperature,-T", r.settings.temperature, "Soft-target temperature T (logit mode)")
      ->capture_default_str()->check(greater_than(0));
  cmd->add_option("--alpha", r.settings.alpha,
                  "Weight of the teacher term vs cross-entropy, in [0, 1]")->capture_default_str();
  cmd->add_option("--feature-weight", r.settings.feature_weight, "Weight of the hidden-state loss")
      ->capture_default_str();
  cmd->add_option("--attn-weight", r.settings.attn_weight, "Weight of the attention-map loss")
      ->capture_default_str();
  cmd->add_option("--attn-loss", r.settings.attn_loss, "Attention-map loss: kl or mse")
      ->capture_default_str();
  cmd->add_option("--layer-map", f->layer_map,
                  "Student:teacher block pairs for feature/attention, e.g. 0:1,1:3 (default: "
                  "spread evenly; identity for equal depths)");
  cmd->add_flag("--cache-teacher", r.settings.cache_teacher,
                "Compute teacher logits once per training image and reuse them (logit/hard/token "
                "modes; needs --crop-padding 0 and no flips)");
  cmd->add_option("--data,-d", r.data, "Dataset (as for `vitopt train --data`)")->capture_default_str();
  cmd->add_option("--limit", r.limit, "Use only the first N training images");
  cmd->add_option("--val-limit", r.val_limit, "Use only the first N test images for validation");
  cmd->add_flag("--no-val", f->no_val, "Skip per-epoch validation (and the final comparison)");
  cmd->add_flag("--no-report", f->no_report, "Skip the comparison with the teacher after training");
  cmd->add_option("--eval-limit", r.eval_limit, "Test images for the evaluator's report (0: all)");
  cmd->add_option("--latency-runs", r.latency_runs, "Timed batch-1 forwards per model")
      ->capture_default_str()->check(greater_than(0));
  cmd->add_flag("--rerun", f->rerun, "Retrain runs that a previous call completed in --out");
  cmd->add_option("--out,-o", f->out,
                  "Output folder (one run: its models and metrics; several: a sub-folder per "
                  "mode set plus distill.json and compare.md)")
      ->required();
  add_train_option_flags(cmd, r.options);
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  add_dist_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    if (!start_distributed(f->common)) return;  // this process launched the workers
    f->req.teacher = model_path_for_job(f->req.teacher, f->import);
    if (f->req.student.ends_with(".safetensors") &&
        std::filesystem::is_regular_file(f->req.student))
      f->req.student = model_path_for_job(f->req.student, f->import);
    auto& req = f->req;
    req.threads = train::configure_threads(f->common.threads);
    req.runs = f->modes.empty() ? std::vector<std::string>{"logit,attention"} : f->modes;
    if (f->baseline) req.runs.insert(req.runs.begin(), "none");
    if (!f->layer_map.empty()) req.settings.layer_map = distill::parse_layer_map(f->layer_map);
    req.validate = !f->no_val;
    req.report = !f->no_report;
    req.skip_completed = !f->rerun;
    req.out_dir = f->out;
    req.options.seed = f->common.seed;
    req.options.device = f->common.device;
    req.options.quiet = f->common.quiet || f->common.json;
    const auto summary = distill::run_distill(req);
    if (f->common.json) {
      print_json(summary);
      return;
    }
    if (f->common.quiet) return;
    const auto& t = summary["teacher"];
    if (t.contains("top1")) fmt::print("teacher: top-1 {:.2f}%\n", 100 * t["top1"].get<double>());
    for (const auto& run : summary["runs"]) {
      if (run.contains("top1"))
        fmt::print("student [{}]: top-1 {:.2f}% top-3 {:.2f}% ({} params, {:.0f} s)\n",
                   run["name"].get<std::string>(), 100 * run["top1"].get<double>(),
                   100 * run["top3"].get<double>(), run["params"].get<int64_t>(),
                   run["train_seconds"].get<double>());
      else
        fmt::print("student [{}]: model in {}\n", run["name"].get<std::string>(),
                   run["dir"].get<std::string>());
    }
    fmt::print("summary: {}/distill.json{}\n", f->out,
               req.report ? fmt::format(", {}/compare.md", f->out) : "");
  });
}

}  // namespace vitopt::cli
