// One registration function per `vitopt` sub-command (each in its own cmd_<name>.cpp).
#pragma once

#include <CLI/CLI.hpp>

namespace vitopt::cli {

void register_init(CLI::App& app);
void register_info(CLI::App& app);
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_infer(CLI::App& app);
void register_pipeline(CLI::App& app);
void register_bench(CLI::App& app);     // runtime (issue 4)
void register_quantize(CLI::App& app);  // compress/quant
void register_prune(CLI::App& app);     // compress/prune
void register_distill(CLI::App& app);   // compress/distill
void register_factorize(CLI::App& app);  // compress/lowrank
void register_share(CLI::App& app);      // compress/lowrank
void register_merge(CLI::App& app);      // compress/merge
void register_search(CLI::App& app);     // search
void register_circuits(CLI::App& app);   // compress/circuits
void register_export(CLI::App& app);    // export (ONNX)
void register_import(CLI::App& app);    // timm / HF checkpoints
void register_launch(CLI::App& app);    // data-parallel workers (train/distributed)

}  // namespace vitopt::cli
