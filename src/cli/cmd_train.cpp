// `vitopt train`: trains a ViT (fresh from a preset/config, or fine-tunes a model file) with
// checkpoints, resume, validation and progress; the run folder gets model, best model, metrics.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/merge_schedule.h"
#include "model/fused_attention.h"
#include "train/torch_env.h"
#include "train/train_job.h"

namespace vitopt::cli {

void add_train_option_flags(CLI::App* cmd, train::TrainOptions& o) {
  cmd->add_option("--epochs", o.epochs, "Training epochs")->check(greater_than(0));
  cmd->add_option("--batch-size,-b", o.batch_size, "Batch size")->check(greater_than(0));
  cmd->add_option("--lr", o.lr, "Peak learning rate (after warm-up)")->check(greater_than(0));
  cmd->add_option("--min-lr", o.min_lr, "Cosine schedule floor")->check(at_least(0));
  cmd->add_option("--wd", o.weight_decay, "AdamW decoupled weight decay")->check(at_least(0));
  cmd->add_option("--warmup-epochs", o.warmup_epochs, "Linear warm-up length in epochs")
      ->check(at_least(0));
  cmd->add_option("--label-smoothing", o.label_smoothing, "Label smoothing in [0, 1)")
      ->check(CLI::Range(0.0, 0.999));
  cmd->add_option("--clip", o.grad_clip, "Max gradient L2 norm (0: off)")->check(at_least(0));
  cmd->add_option("--crop-padding", o.crop_padding, "Random-crop padding in pixels (0: off)")
      ->check(at_least(0));
  cmd->add_flag("--hflip,!--no-hflip", o.hflip, "Random horizontal flips");
  cmd->add_option("--workers", o.workers, "Data loader threads")->check(CLI::Range(1, 64));
  cmd->add_option("--checkpoint-every", o.checkpoint_every_steps,
                  "Also checkpoint every N steps within an epoch (0: epoch ends only)")
      ->check(at_least(0));
  cmd->add_option("--stop-after-steps", o.stop_after_steps,
                  "Stop after N steps as if interrupted (checkpoint saved; for testing resume)")
      ->check(at_least(0))->group("");
}

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a ViT (or fine-tune a model file)");
  struct Flags {
    CommonFlags common;
    ConfigFlags config;
    ImportFlags import;
    train::TrainJob job;
    std::string out;
    bool no_val = false;
    std::string attention;
  };
  auto f = std::make_shared<Flags>();
  add_config_flags(cmd, f->config);
  cmd->add_option("--model,-m", f->job.init_model, "Start from this model file instead of a preset")
      ->check(CLI::ExistingFile);
  add_import_flags(cmd, f->import);
  cmd->add_option("--data,-d", f->job.data,
                  "Dataset: fashion-mnist, mnist, cifar10:DIR, cifar100:DIR, imagefolder:DIR, "
                  "tiny-imagenet:DIR, synthetic, or a folder (layout detected)");
  cmd->add_option("--limit", f->job.limit, "Use only the first N training images");
  cmd->add_option("--val-limit", f->job.val_limit, "Use only the first N test images for validation");
  cmd->add_flag("--no-val", f->no_val, "Skip per-epoch validation");
  cmd->add_option("--out,-o", f->out, "Run folder (checkpoint, best and final model, metrics)")
      ->required();
  cmd->add_flag("--resume", f->job.options.resume, "Continue from <out>/checkpoint.safetensors");
  add_train_option_flags(cmd, f->job.options);
  cmd->add_option("--attention", f->attention,
                  "Attention while training: auto (fused from 64 tokens on), plain (keeps the "
                  "N x N probabilities for backward), fused (only each row's log-sum-exp kept; "
                  "default $VITOPT_ATTENTION or auto)")
      ->check(CLI::IsMember({"auto", "plain", "fused"}));
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  add_dist_flags(cmd, f->common);
  cmd->callback([f] {
    if (!start_distributed(f->common)) return;  // this process launched the workers
    train::configure_threads(f->common.threads);
    auto& job = f->job;
    if (!f->attention.empty()) model::set_training_attention(f->attention);
    if (job.init_model.empty() && !job.options.resume) {
      job.config = build_config(f->config, "vit-fmnist");
      if (f->import.merge_r) {  // train with token merging on from the start
        io::set_merge_schedule(job.config, io::parse_merge_schedule(*f->import.merge_r,
                                                                    job.config.depth, "--merge-r"));
        job.config.normalize("--merge-r");
      }
    }
    job.hints = import_hints(f->import);
    job.validate = !f->no_val;
    job.options.out_dir = f->out;
    job.options.seed = f->common.seed;
    job.options.device = f->common.device;
    job.options.quiet = f->common.quiet || f->common.json;
    const auto result = train::run_train_job(job);
    if (f->common.json) {
      print_json(train::train_result_json(result));
    } else if (!f->common.quiet) {
      if (result.completed)
        fmt::print("done: best top-1 {:.2f}% (epoch {}), final {:.2f}%; models in {}\n",
                   100 * result.best_top1, result.best_epoch, 100 * result.final_top1, f->out);
      else
        fmt::print("stopped early; resume with --resume --out {}\n", f->out);
    }
  });
}

}  // namespace vitopt::cli
