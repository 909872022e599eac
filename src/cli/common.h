// Flags and helpers shared by the `vitopt` commands: thread/seed/device/output flags, model
// config from preset/file/overrides, dataset opening, JSON printing. No command logic here.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "io/vit_config.h"
#include "model/model_file.h"
#include "train/distributed/world.h"

namespace vitopt::cli {

struct CommonFlags {
  int threads = 0;        // 0: all cores
  bool quiet = false;
  bool json = false;
  uint64_t seed = 0;
  std::string device = "cpu";
  train::dist::DistFlags dist;  // set by add_dist_flags (commands that train)
};

void add_threads_flag(CLI::App* cmd, CommonFlags& f);
void add_output_flags(CLI::App* cmd, CommonFlags& f);  // --quiet, --json
void add_seed_flag(CLI::App* cmd, CommonFlags& f);
void add_device_flag(CLI::App* cmd, CommonFlags& f);

// Data parallelism, on every command that trains: --nnodes, --node-rank, --nproc-per-node,
// --master HOST:PORT, --dist-timeout (torchrun's environment variables work without flags).
void add_dist_flags(CLI::App* cmd, train::dist::DistFlags& f);
inline void add_dist_flags(CLI::App* cmd, CommonFlags& f) { add_dist_flags(cmd, f.dist); }

// First thing in a training command's callback. Resolves flags + environment:
//  - a world of one: returns true (run the command here);
//  - a worker of a larger world: joins the process group, makes ranks other than 0 quiet (no
//    progress, no --json on stdout), returns true;
//  - flags asking for several local workers without a worker environment: starts them (this
//    same command line, like `vitopt launch`), waits, and returns false on success; a failed
//    launch ends the command with the failed worker's exit code.
bool start_distributed(CommonFlags& common);

// The command line main() received, for re-running it as launched workers.
void set_command_line(int argc, char** argv);

// --preset / --config / per-field overrides for building a fresh model config.
struct ConfigFlags {
  std::string preset;
  std::string config_file;
  std::optional<int> image_size, channels, patch, dim, depth, heads, mlp, classes;
  bool distill_token = false;
};
void add_config_flags(CLI::App* cmd, ConfigFlags& f);
io::ViTConfig build_config(const ConfigFlags& f, const std::string& default_preset);

// --import-heads / --import-config for timm / HF checkpoints (files without vitopt metadata),
// --mean / --std overrides for any file, and (add_import_flags only) --merge-r.
struct ImportFlags {
  std::optional<int> heads;
  std::string config_json;
  std::vector<float> mean, std;
  std::optional<std::string> merge_r;  // --merge-r (any file)
};
// The checkpoint flags every command that reads a model takes.
void add_checkpoint_flags(CLI::App* cmd, ImportFlags& f);
// add_checkpoint_flags + --merge-r (commands that run a model: eval, info, infer, train).
void add_import_flags(CLI::App* cmd, ImportFlags& f);
io::ImportHints import_hints(const ImportFlags& f);
// For commands whose jobs read a model by path: a timm / HF checkpoint is converted once with
// the flags' hints (exactly as `vitopt import` would) into a scratch file removed at exit, whose
// path is returned; a vitopt file's path comes back unchanged. InputError as `vitopt import`'s.
std::string model_path_for_job(const std::string& path, const ImportFlags& f);
// --merge-r alone (commands without the import hints, e.g. bench).
void add_merge_flag(CLI::App* cmd, std::optional<std::string>& merge_r);

void print_json(const nlohmann::json& j);

// "a,b,,c" -> {"a", "b", "c"} (empty items dropped), for comma-list flags.
std::vector<std::string> split_list(const std::string& text);

// Readable range checks for numeric flags ("expected a number >= 0, got -1"), instead of CLI11's
// Range whose message prints std::numeric_limits<double>::max() as a 300-digit number.
CLI::Validator at_least(double lo);             // value >= lo
CLI::Validator greater_than(double lo);         // value > lo
CLI::Validator in_range(double lo, double hi);  // lo <= value <= hi

// The one-line message and exit code for a command-line parse failure: help and version requests
// keep CLI11's exit (0, text on stdout); every other failure (unknown flag, bad or missing value,
// failed check) is a bad-input error, exit code 2, with CLI11's range messages made readable.
struct ParseFailure {
  bool is_help = false;  // --help/--version: let CLI11 print it
  bool silent = false;   // a command's own exit status (CLI::RuntimeError): already reported
  int exit_code = 2;
  std::string message;
};
ParseFailure describe_parse_error(const CLI::ParseError& e);

}  // namespace vitopt::cli
