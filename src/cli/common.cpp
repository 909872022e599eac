#include "cli/common.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "io/presets.h"
#include "train/distributed/communicator.h"
#include "train/distributed/launcher.h"

namespace vitopt::cli {

void add_threads_flag(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--threads", f.threads, "Threads for LibTorch and OpenBLAS (0: all cores)")
      ->check(CLI::NonNegativeNumber);
}

void add_output_flags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_flag("--quiet,-q", f.quiet, "No progress output");
  cmd->add_flag("--json", f.json, "Print the result as JSON on stdout (implies --quiet)");
}

void add_seed_flag(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--seed", f.seed, "Random seed: same seed, same result on the same machine");
}

void add_device_flag(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--device", f.device, "cpu, cuda or cuda:N");
}

namespace {
std::vector<std::string> g_command_line;  // argv as main() got it
}  // namespace

void set_command_line(int argc, char** argv) { g_command_line.assign(argv, argv + argc); }

void add_dist_flags(CLI::App* cmd, train::dist::DistFlags& f) {
  const std::string group = "Data parallelism (see README: distributed training)";
  cmd->add_option("--nnodes", f.nnodes, "Machines in a data-parallel job (default 1)")
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd->add_option("--node-rank", f.node_rank, "This machine's index, 0..nnodes-1")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  cmd->add_option("--nproc-per-node", f.nproc_per_node,
                  "Worker processes on this machine (the cores are split between them)")
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd->add_option("--master", f.master,
                  "HOST:PORT of rank 0's rendezvous (default 127.0.0.1:29500)")
      ->group(group);
  cmd->add_option("--dist-timeout", f.timeout_s,
                  "Seconds a worker waits for the others before the job fails (default 300)")
      ->check(CLI::PositiveNumber)
      ->group(group);
}

bool start_distributed(CommonFlags& common) {
  namespace d = train::dist;
  const auto resolved = d::resolve_world(common.dist);
  if (resolved.role == d::Role::Launcher)
    d::require_available(fmt::format("--nnodes {} x --nproc-per-node {}", resolved.world.nnodes,
                                     resolved.world.local_world_size));
  if (resolved.role == d::Role::Worker)
    d::require_available(
        fmt::format("WORLD_SIZE={} in the environment", resolved.world.world_size));
  if (resolved.role == d::Role::Launcher) {
    d::LaunchSpec spec;
    spec.node = resolved.world;
    spec.threads_per_worker = common.threads;
    spec.quiet = common.quiet || common.json;
    spec.argv = g_command_line;
    if (spec.argv.empty()) core::throw_internal("start_distributed: command line not recorded");
    spec.argv[0] = d::self_executable();
    const int code = d::launch_workers(spec);
    if (code != 0) throw CLI::RuntimeError(code);
    return false;
  }
  if (resolved.role == d::Role::Worker) {
    d::init_process_group(resolved.world);
    if (resolved.world.rank != 0) {
      common.quiet = true;
      common.json = false;
    }
  }
  return true;
}

void add_config_flags(CLI::App* cmd, ConfigFlags& f) {
  cmd->add_option("--preset", f.preset,
                  "Model preset: " + fmt::format("{}", fmt::join(io::preset_names(), ", ")));
  cmd->add_option("--config", f.config_file, "ViTConfig JSON file (instead of --preset)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--image-size", f.image_size, "Override: input image side")->check(CLI::PositiveNumber);
  cmd->add_option("--channels", f.channels, "Override: input channels")->check(CLI::PositiveNumber);
  cmd->add_option("--patch", f.patch, "Override: patch side")->check(CLI::PositiveNumber);
  cmd->add_option("--dim", f.dim, "Override: embedding width C")->check(CLI::PositiveNumber);
  cmd->add_option("--depth", f.depth, "Override: number of blocks")->check(CLI::PositiveNumber);
  cmd->add_option("--heads", f.heads, "Override: attention heads per block")->check(CLI::PositiveNumber);
  cmd->add_option("--mlp", f.mlp, "Override: MLP hidden width")->check(CLI::PositiveNumber);
  cmd->add_option("--classes", f.classes, "Override: number of classes")->check(CLI::PositiveNumber);
  cmd->add_flag("--distill-token", f.distill_token, "Add a DeiT distillation token and head");
}

io::ViTConfig build_config(const ConfigFlags& f, const std::string& default_preset) {
  if (!f.preset.empty() && !f.config_file.empty())
    core::throw_input("--preset and --config are exclusive: give one");
  io::ViTConfig c;
  if (!f.config_file.empty()) {
    c = io::ViTConfig::from_json(
        core::json_parse(core::read_file_text(f.config_file), f.config_file), f.config_file);
  } else {
    c = io::preset(f.preset.empty() ? default_preset : f.preset);
  }
  const bool shape_changed = f.dim || f.depth || f.heads || f.mlp;
  if (f.image_size) c.image_size = *f.image_size;
  if (f.channels) {
    c.in_channels = *f.channels;
    c.preprocess.mean.assign(static_cast<size_t>(c.in_channels), c.preprocess.mean.front());
    c.preprocess.std.assign(static_cast<size_t>(c.in_channels), c.preprocess.std.front());
  }
  if (f.patch) c.patch_size = *f.patch;
  if (f.dim) c.embed_dim = *f.dim;
  if (f.depth) c.depth = *f.depth;
  if (f.heads) c.num_heads = *f.heads;
  if (f.mlp) c.mlp_dim = *f.mlp;
  if (f.classes) c.num_classes = *f.classes;
  if (f.distill_token) c.distill_token = true;
  if (shape_changed) {
    c.head_dim = 0;  // recomputed from dim / heads
    c.blocks.clear();
    c.name = "custom";
  }
  c.normalize("command line");
  return c;
}

void add_import_flags(CLI::App* cmd, ImportFlags& f) {
  cmd->add_option("--import-heads", f.heads,
                  "Heads per block for checkpoints without vitopt metadata (default: dim/64)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mean", f.mean, "Override the model's input mean (one value per channel)");
  cmd->add_option("--std", f.std, "Override the model's input std (one value per channel)");
}

io::ImportHints import_hints(const ImportFlags& f) {
  io::ImportHints h;
  h.num_heads = f.heads;
  if (!f.mean.empty()) h.mean = f.mean;
  if (!f.std.empty()) h.std = f.std;
  return h;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

}  // namespace vitopt::cli
