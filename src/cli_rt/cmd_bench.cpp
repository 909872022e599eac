// `vitopt-rt bench`: latency percentiles and throughput per model and batch (infer/latency.h).
#include <fmt/format.h>

#include <iostream>

#include "cli_rt/commands.h"
#include "infer/latency.h"

namespace vitopt::cli_rt {

void register_bench(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("bench", "Latency (p50/p90/p99) and throughput per model and batch");
  struct Flags {
    RuntimeFlags rt;
    std::vector<std::string> models;
    std::string batches = "1", schedule = "auto", int4 = "auto";
    int runs = 20, warmup = 3;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->models, "Model files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch,-b", f->batches, "Batch sizes, comma separated (e.g. 1,8,32)");
  cmd->add_option("--runs", f->runs, "Timed runs per model and batch")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", f->warmup, "Untimed runs first")->check(CLI::Range(0, 1000));
  cmd->add_option("--schedule", f->schedule,
                  "Thread schedule: auto, layer (split each GEMM), rows (split token rows)")
      ->check(CLI::IsMember({"auto", "layer", "rows"}));
  cmd->add_option("--int4", f->int4,
                  "Kernel for <= 4-bit weights: auto (packed when the int8 weights exceed the L3), "
                  "packed, int8")
      ->check(CLI::IsMember({"auto", "packed", "int8"}));
  add_runtime_flags(cmd, f->rt);
  cmd->callback([f] {
    infer::BenchOptions o;
    o.batches = infer::parse_batch_list(f->batches);
    o.runs = f->runs;
    o.warmup = f->warmup;
    o.runtime = f->rt.options();
    o.runtime.schedule = f->schedule;
    o.runtime.int4 = f->int4;
    nlohmann::json out = nlohmann::json::array();
    if (!f->rt.json) fmt::print("{}", infer::bench_table_header());
    for (const auto& model : f->models) {
      auto records = infer::bench_runtime(model, o);
      if (!f->rt.json && !records.empty()) fmt::print("{}", infer::bench_kernels_line(records[0]));
      for (auto& record : records) {
        if (!f->rt.json) fmt::print("{}", infer::bench_table_row(record));
        out.push_back(std::move(record));
      }
    }
    if (f->rt.json) std::cout << out.dump(2) << std::endl;
  });
}

}  // namespace vitopt::cli_rt
