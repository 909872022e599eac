#include "cli/common.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "io/checkpoint_convert.h"
#include "io/presets.h"
#include "io/safetensors.h"
#include "train/distributed/communicator.h"
#include "train/distributed/launcher.h"

namespace vitopt::cli {

void add_threads_flag(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--threads", f.threads, "Threads for LibTorch and OpenBLAS (0: all cores)")
      ->check(at_least(0));
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
  cmd->add_option("--image-size", f.image_size, "Override: input image side")->check(greater_than(0));
  cmd->add_option("--channels", f.channels, "Override: input channels")->check(greater_than(0));
  cmd->add_option("--patch", f.patch, "Override: patch side")->check(greater_than(0));
  cmd->add_option("--dim", f.dim, "Override: embedding width C")->check(greater_than(0));
  cmd->add_option("--depth", f.depth, "Override: number of blocks")->check(greater_than(0));
  cmd->add_option("--heads", f.heads, "Override: attention heads per block")->check(greater_than(0));
  cmd->add_option("--mlp", f.mlp, "Override: MLP hidden width")->check(greater_than(0));
  cmd->add_option("--classes", f.classes, "Override: number of classes")->check(greater_than(0));
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

void add_checkpoint_flags(CLI::App* cmd, ImportFlags& f) {
  cmd->add_option("--import-heads", f.heads,
                  "timm/HF checkpoints: heads per block when no config.json records them")
      ->check(greater_than(0));
  cmd->add_option("--import-config", f.config_json,
                  "timm/HF checkpoints: their config.json (default: config.json next to the file)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--mean", f.mean, "Override the model's input mean (one value per channel)");
  cmd->add_option("--std", f.std, "Override the model's input std (one value per channel)");
}

void add_import_flags(CLI::App* cmd, ImportFlags& f) {
  add_checkpoint_flags(cmd, f);
  add_merge_flag(cmd, f.merge_r);
}

namespace {

// Scratch folder of this process's converted checkpoints, removed when the process exits.
class ConvertedCheckpoints {
 public:
  ~ConvertedCheckpoints() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path next(const std::string& source) {
    if (dir_.empty()) {
      dir_ = std::filesystem::temp_directory_path() / fmt::format("vitopt-import-{}", ::getpid());
      std::filesystem::create_directories(dir_);
    }
    return dir_ / fmt::format("{}-{}", count_++, std::filesystem::path(source).filename().string());
  }

 private:
  std::filesystem::path dir_;
  int count_ = 0;
};

}  // namespace

std::string model_path_for_job(const std::string& path, const ImportFlags& f) {
  const auto file = io::SafeTensorsFile::load(path);
  if (!io::is_foreign_checkpoint(file)) return path;
  static ConvertedCheckpoints converted;
  const auto bytes = io::convert_checkpoint_bytes(file, import_hints(f));
  const auto out = converted.next(path);
  core::write_file_atomic(out, bytes.data(), bytes.size());
  return out.string();
}

void add_merge_flag(CLI::App* cmd, std::optional<std::string>& merge_r) {
  cmd->add_option("--merge-r", merge_r,
                  "Token merging per block, replacing the file's: 8 (every block), 8,8,4,... "
                  "(one per block), decreasing[:R] (front-loaded, same total as R), off");
}

io::ImportHints import_hints(const ImportFlags& f) {
  io::ImportHints h;
  h.num_heads = f.heads;
  h.config_json = f.config_json;
  if (!f.mean.empty()) h.mean = f.mean;
  if (!f.std.empty()) h.std = f.std;
  h.merge_r = f.merge_r;
  return h;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

namespace {

// A flag value as a double; nullopt for text that is not entirely a finite number.
std::optional<double> parse_number(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "a number >= 0" / "a number > 0" / "a number in [0, 0.999]" for CLI11's Range(lo, hi), whose
// PositiveNumber/NonNegativeNumber use DBL_MIN and DBL_MAX as bounds.
std::string readable_bounds(double lo, double hi) {
  const bool no_upper = hi >= 1e300;
  const bool tiny_lower = lo > 0 && lo < 1e-300;  // PositiveNumber: "> 0"
  if (no_upper && tiny_lower) return "a number > 0";
  if (no_upper) return fmt::format("a number >= {:g}", lo);
  if (lo <= -1e300) return fmt::format("a number <= {:g}", hi);
  return fmt::format("a number in [{:g}, {:g}]", lo, hi);
}

CLI::Validator bounded(std::function<bool(double)> ok, std::string what) {
  CLI::Validator v(
      [ok = std::move(ok), what](std::string& input) -> std::string {
        const auto value = parse_number(input);
        if (value && ok(*value)) return {};
        return fmt::format("expected {}, got '{}'", what, input);
      },
      what);
  return v;
}

}  // namespace

CLI::Validator at_least(double lo) {
  return bounded([lo](double v) { return v >= lo; }, fmt::format("a number >= {:g}", lo));
}

CLI::Validator greater_than(double lo) {
  return bounded([lo](double v) { return v > lo; }, fmt::format("a number > {:g}", lo));
}

CLI::Validator in_range(double lo, double hi) {
  return bounded([lo, hi](double v) { return v >= lo && v <= hi; },
                 fmt::format("a number in [{:g}, {:g}]", lo, hi));
}

ParseFailure describe_parse_error(const CLI::ParseError& e) {
  ParseFailure f;
  if (dynamic_cast<const CLI::CallForHelp*>(&e) != nullptr ||
      dynamic_cast<const CLI::CallForAllHelp*>(&e) != nullptr ||
      dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr || e.get_exit_code() == 0) {
    f.is_help = true;
    f.exit_code = e.get_exit_code();
    return f;
  }
  // A command's own exit status (run_child, `vitopt launch` passing a worker's code on), already
  // reported by the command: pass it through unchanged.
  if (dynamic_cast<const CLI::RuntimeError*>(&e) != nullptr) {
    f.exit_code = e.get_exit_code();
    f.silent = true;
    return f;
  }
  std::string msg = e.what();
  // "--epochs: Value -1 not in range 0.000000 to 179769313486231570814527423731704356798070..."
  static const std::regex kRange(R"(Value (.*) not in range (\S+) to (\S+))");
  std::smatch m;
  if (std::regex_search(msg, m, kRange)) {
    auto lo = parse_number(m[2].str());
    const auto hi = parse_number(m[3].str()), value = parse_number(m[1].str());
    // CLI::PositiveNumber prints its lower bound DBL_MIN as "0.000000", like NonNegativeNumber's
    // 0; a rejected 0 tells them apart (a negative value is below both).
    if (lo && *lo == 0 && value && *value == 0) lo = std::numeric_limits<double>::min();
    if (lo && hi) {
      msg = m.prefix().str() +
            fmt::format("expected {}, got '{}'", readable_bounds(*lo, *hi), m[1].str()) +
            m.suffix().str();
    }
  }
  f.message = msg;
  return f;
}

}  // namespace vitopt::cli
