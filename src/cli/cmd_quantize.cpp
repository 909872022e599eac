// `vitopt quantize`: PTQ (2..16-bit weights, optional activations), QAT, mixed precision under a
// size budget, and bit sweeps. Flags only; the work is quant::run_quantize.
#include <fmt/format.h>

#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/quant/quantize_job.h"
#include "core/error.h"
#include "train/torch_env.h"

namespace vitopt::cli {
namespace {

// "4,6,8" -> {4, 6, 8}; errors name the flag.
std::vector<int> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      core::throw_input("{}: expected comma-separated integers such as 4,6,8, got '{}'", flag,
                        text);
    }
  }
  if (out.empty()) core::throw_input("{}: expected at least one bit width", flag);
  return out;
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("quantize", "Quantize a model: PTQ, QAT, mixed precision, bit sweeps");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    quant::QuantizeRequest req;
    std::string model, out, abits = "8", scheme = "sym", granularity = "channel";
    std::string act_scheme = "asym", act_granularity = "tensor", observer = "mse", weight_observer;
    std::string sweep, mp_bits, attn_bits = "none";
    double size_budget_mb = 0;
    bool no_reparam = false, no_eval = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->model, "fp32 model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", f->out, "Quantized model file (a folder with --sweep)")->required();
  cmd->add_option("--data,-d", f->req.data,
                  "Dataset: calibration from its train split, accuracy on test");
  cmd->add_option("--wbits", f->req.ptq.wbits, "Weight bits, 2..16");
  cmd->add_option("--abits", f->abits, "Activation bits 2..16, or 'none' for fp32 activations");
  cmd->add_option("--attn-bits", f->attn_bits,
                  "Attention matmuls: q/k/v bits 2..16 (static, per block), or 'none' (fp32)");
  cmd->add_option("--prob-bits", f->req.ptq.prob_bits,
                  "Attention probabilities: bits 2..16 (with --attn-bits)");
  cmd->add_option("--prob-quantizer", f->req.ptq.prob_quantizer,
                  "Attention probabilities: log2 (2^-c codes), uniform, or auto (log2 at <= 4 bits)")
      ->check(CLI::IsMember({"log2", "uniform", "auto"}));
  cmd->add_option("--scheme", f->scheme, "Weights: sym or asym")
      ->check(CLI::IsMember({"sym", "asym"}));
  cmd->add_option("--granularity", f->granularity, "Weights: channel or tensor scales")
      ->check(CLI::IsMember({"channel", "tensor"}));
  cmd->add_option("--act-scheme", f->act_scheme, "Activations: sym or asym")
      ->check(CLI::IsMember({"sym", "asym"}));
  cmd->add_option("--act-granularity", f->act_granularity,
                  "Activations: tensor (static, calibrated) or token (dynamic per-token scales)")
      ->check(CLI::IsMember({"tensor", "token"}));
  cmd->add_option("--observer", f->observer, "Activation range: minmax, percentile or mse");
  cmd->add_option("--weight-observer", f->weight_observer, "Weight range (default: as --observer)");
  cmd->add_option("--percentile", f->req.ptq.a_observer.percentile,
                  "Percentile observer: % kept inside");
  cmd->add_flag("--no-reparam", f->no_reparam,
                "Do not fold per-channel LayerNorm ranges (RepQ-style)");
  cmd->add_option("--reparam-alpha", f->req.ptq.reparam_options.alpha,
                  "LayerNorm folding strength in [0, 1] (1: equal channel ranges)");
  cmd->add_option("--calib-images", f->req.calib_images,
                  "Calibration images (first N of the train split)");
  cmd->add_option("--qat-epochs", f->req.qat_epochs, "QAT fine-tuning epochs after PTQ (0: none)");
  cmd->add_flag("--lsq", f->req.lsq, "QAT learns step sizes (LSQ)");
  cmd->add_option("--qat-lr", f->req.qat_lr, "QAT peak learning rate");
  cmd->add_option("--qat-images", f->req.qat_images, "QAT on the first N train images (0: all)");
  cmd->add_option("--size-budget-mb", f->size_budget_mb,
                  "Mixed precision: file size budget (MB, 10^6 B)");
  cmd->add_option("--mp-bits", f->mp_bits,
                  "Mixed precision: candidate weight bits (default 2,3,4,5,6,8)");
  cmd->add_option("--sweep", f->sweep,
                  "Bit sweep, e.g. 4,6,8,10,12,16 (W = A bits; --out is a folder)");
  cmd->add_option("--limit", f->req.eval_limit, "Evaluate on the first N test images (0: all)");
  cmd->add_flag("--no-eval", f->no_eval, "Skip the test-set accuracy of fp32 and quantized models");
  cmd->add_option("--workers", f->req.workers, "Data loader threads")->check(CLI::Range(1, 64));
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_device_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  add_dist_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    if (!start_distributed(f->common)) return;  // this process launched the workers
    f->model = model_path_for_job(f->model, f->import);
    // Only QAT trains; without it the other ranks of a data-parallel job have nothing to do.
    if (!train::dist::is_root() && f->req.qat_epochs == 0) return;
    train::configure_threads(f->common.threads);
    auto& r = f->req;
    r.model = f->model;
    r.out = f->out;
    if (f->abits == "none") {
      r.ptq.abits.reset();
    } else {
      try {
        r.ptq.abits = std::stoi(f->abits);
      } catch (const std::exception&) {
        core::throw_input("--abits: expected a bit width 2..16 or 'none', got '{}'", f->abits);
      }
    }
    if (f->attn_bits != "none") {
      try {
        size_t used = 0;
        r.ptq.attn_bits = std::stoi(f->attn_bits, &used);
        if (used != f->attn_bits.size()) throw std::invalid_argument(f->attn_bits);
      } catch (const std::exception&) {
        core::throw_input("--attn-bits: expected a bit width 2..16 or 'none', got '{}'",
                          f->attn_bits);
      }
    }
    r.ptq.w_symmetric = quant::parse_scheme(f->scheme);
    r.ptq.w_per_channel = quant::parse_channel_granularity(f->granularity);
    r.ptq.a_symmetric = quant::parse_scheme(f->act_scheme, "--act-scheme");
    r.ptq.a_dynamic = f->act_granularity == "token";
    r.ptq.a_observer.kind = quant::parse_observer(f->observer);
    r.ptq.w_observer = r.ptq.a_observer;
    if (!f->weight_observer.empty())
      r.ptq.w_observer.kind = quant::parse_observer(f->weight_observer, "--weight-observer");
    r.ptq.reparam = !f->no_reparam;
    r.ptq.seed = f->common.seed;
    if (f->size_budget_mb != 0) r.size_budget_mb = f->size_budget_mb;
    if (!f->mp_bits.empty()) r.mp_bits = parse_int_list(f->mp_bits, "--mp-bits");
    if (!f->sweep.empty()) r.sweep = parse_int_list(f->sweep, "--sweep");
    r.evaluate = !f->no_eval;
    r.device = f->common.device;
    r.seed = f->common.seed;
    r.quiet = f->common.quiet || f->common.json;
    const auto j = quant::run_quantize(r);
    if (f->common.json) {
      print_json(j);
    } else if (!f->common.quiet) {
      if (j.contains("widths")) {
        for (const auto& w : j["widths"])
          fmt::print("{}: top-1 {:.2f}% ({:+.2f}), size {:.3f}x\n", w["file"].get<std::string>(),
                     100 * w["top1"].get<double>(), w["top1_delta_points"].get<double>(),
                     w["size_ratio"].get<double>());
      } else {
        fmt::print("{}: {} bytes ({:.3f}x fp32)", f->out, j["bytes"].get<int64_t>(),
                   j["size_ratio"].get<double>());
        if (j.contains("top1"))
          fmt::print(", top-1 {:.2f}% vs fp32 {:.2f}% ({:+.2f} points)",
                     100 * j["top1"].get<double>(), 100 * j["top1_fp32"].get<double>(),
                     j["top1_delta_points"].get<double>());
        fmt::print("\n");
      }
    }
  });
}

}  // namespace vitopt::cli
