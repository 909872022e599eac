// `vitopt-rt` sub-commands (one cmd_<name>.cpp each) and the flags they share. Parsing and
// printing only: the work is in src/infer.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "vitopt/runtime.h"

namespace vitopt::cli_rt {

struct RuntimeFlags {
  int threads = 0;  // 0: all cores
  std::string isa;  // "" best available
  int heads = 0;    // timm/HF checkpoints without vitopt metadata: heads per block (0: C / 64)
  std::string merge_r;  // token-merging schedule replacing the file's ("" keeps it)
  bool json = false;
  runtime::RuntimeOptions options() const;
};
void add_runtime_flags(CLI::App* cmd, RuntimeFlags& f);

void register_info(CLI::App& app);
void register_infer(CLI::App& app);
void register_bench(CLI::App& app);
void register_eval(CLI::App& app);

}  // namespace vitopt::cli_rt
