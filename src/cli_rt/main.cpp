// vitopt-rt entry point: the runtime without LibTorch. Same error convention as `vitopt`: a
// one-line message, exit code 2 for bad input and 1 for internal failures.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli_rt/commands.h"
#include "core/error.h"

namespace vitopt::cli_rt {

runtime::RuntimeOptions RuntimeFlags::options() const {
  runtime::RuntimeOptions o;
  o.threads = threads;
  o.isa = isa;
  o.import_heads = heads;
  o.merge_r = merge_r;
  return o;
}

void add_runtime_flags(CLI::App* cmd, RuntimeFlags& f) {
  cmd->add_option("--threads", f.threads, "Runtime threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  // The runtime checks the name (and that this CPU supports it): the levels grow with the kernels.
  cmd->add_option("--isa", f.isa,
                  "Kernel level, e.g. ref, avx2, avx512 (default: best this CPU has)");
  cmd->add_option("--heads", f.heads,
                  "Heads per block for a timm/HF checkpoint without vitopt metadata (default: "
                  "embed dim / 64)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--merge-r", f.merge_r,
                  "Token merging per block, replacing the file's: 8 (every block), 8,8,4,... "
                  "(one per block), decreasing[:R] (front-loaded, same total as R), off");
  cmd->add_flag("--json", f.json, "Print the result as JSON on stdout");
}

}  // namespace vitopt::cli_rt

int main(int argc, char** argv) {
  CLI::App app{"vitopt-rt: run vitopt model files on the dependency-free runtime (no LibTorch)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vitopt-rt 0.1.0");
  vitopt::cli_rt::register_info(app);
  vitopt::cli_rt::register_infer(app);
  vitopt::cli_rt::register_bench(app);
  vitopt::cli_rt::register_eval(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const vitopt::core::Error& e) {
    fmt::print(stderr, "vitopt-rt: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "vitopt-rt: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
