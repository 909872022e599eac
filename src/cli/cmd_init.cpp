// `vitopt init`: writes a randomly initialized model file from a preset or config (+ overrides),
// for benchmarks, tests and as a starting point for training.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "export/model_writer.h"
#include "io/model_counts.h"
#include "model/model_file.h"
#include "train/torch_env.h"

namespace vitopt::cli {

void register_init(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Write a randomly initialized model file");
  struct Flags {
    CommonFlags common;
    ConfigFlags config;
    std::string out;
  };
  auto f = std::make_shared<Flags>();
  add_config_flags(cmd, f->config);
  add_seed_flag(cmd, f->common);
  add_threads_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  cmd->add_option("--out,-o", f->out, "Output model file (.safetensors)")->required();
  cmd->callback([f] {
    train::configure_threads(f->common.threads);
    auto config = build_config(f->config, "vit-fmnist");
    model::ViT vit(config);
    vit->init_weights(f->common.seed);
    exporter::save_model(vit, f->out);
    const auto params = io::count_params(config);
    if (f->common.json) {
      print_json({{"out", f->out}, {"config", config.to_json()}, {"params", params},
                  {"macs", io::count_macs(config)}});
    } else if (!f->common.quiet) {
      fmt::print("wrote {} ({}, {} params, {:.1f} MMACs/image)\n", f->out, config.name, params,
                 static_cast<double>(io::count_macs(config)) / 1e6);
    }
  });
}

}  // namespace vitopt::cli
