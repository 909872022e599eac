// `vitopt bench`: latency percentiles and throughput of model files per engine (the vitopt
// runtime, LibTorch eager) and batch size, measured side by side in one process with the same
// thread count. Random normal inputs; warm-up runs first (they also build the runtime's plan).
// The runtime engine's measurement is src/infer's (as `vitopt-rt bench`): no LibTorch call on it.
// Runtime records name the CPU, the kernel level and the implementation per kernel family.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/threads.h"
#include "infer/latency.h"
#include "model/model_file.h"
#include "train/torch_env.h"
#include "vitopt/runtime.h"

namespace vitopt::cli {

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Latency (p50/p90/p99) and throughput per model, engine and batch");
  struct Flags {
    CommonFlags common;
    ImportFlags import;
    std::vector<std::string> models;
    std::string batches = "1", isa, schedule = "auto", int4 = "auto";
    std::vector<std::string> engines{"runtime"};
    int runs = 20, warmup = 3;
    std::optional<std::string> merge_r;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model,-m", f->models, "Model files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch,-b", f->batches, "Batch sizes, comma separated (e.g. 1,8,32)");
  cmd->add_option("--engine", f->engines, "Engines, comma separated: runtime, torch")
      ->delimiter(',')->check(CLI::IsMember({"runtime", "torch"}));
  cmd->add_option("--runs", f->runs, "Timed runs per model/engine/batch")->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", f->warmup, "Untimed runs first")->check(CLI::Range(0, 1000));
  cmd->add_option("--isa", f->isa, "Runtime kernel level (default: $VITOPT_ISA, else the best this CPU has)")
      ->check(CLI::IsMember({"ref", "avx2", "avx2vnni", "avx512", "avx512vnni"}));
  cmd->add_option("--int4", f->int4,
                  "Runtime kernel for <= 4-bit weights: auto (packed when the int8 weights exceed the L3), "
                  "packed, int8")
      ->check(CLI::IsMember({"auto", "packed", "int8"}));
  cmd->add_option("--schedule", f->schedule,
                  "Runtime thread schedule: auto, layer (split each GEMM), rows (split token rows)")
      ->check(CLI::IsMember({"auto", "layer", "rows"}));
  add_merge_flag(cmd, f->merge_r);
  add_threads_flag(cmd, f->common);
  add_output_flags(cmd, f->common);
  add_checkpoint_flags(cmd, f->import);
  cmd->callback([f] {
    for (auto& path : f->models) path = model_path_for_job(path, f->import);
    const std::vector<int> batches = infer::parse_batch_list(f->batches);
    const int threads = f->common.threads > 0 ? f->common.threads : core::available_cores();
    nlohmann::json out = nlohmann::json::array();
    const bool human = !f->common.json && !f->common.quiet;
    if (human) fmt::print("{}", infer::bench_table_header());
    auto record = [&](nlohmann::json j) {
      if (human) fmt::print("{}", infer::bench_table_row(j));
      out.push_back(std::move(j));
    };
    for (const auto& path : f->models) {
      for (const auto& engine : f->engines) {
        if (engine == "runtime") {
          infer::BenchOptions o;
          o.batches = batches;
          o.warmup = f->warmup;
          o.runs = f->runs;
          o.runtime.threads = threads;
          o.runtime.isa = f->isa;
          o.runtime.schedule = f->schedule;
          o.runtime.int4 = f->int4;
          o.runtime.merge_r = f->merge_r.value_or("");
          auto records = infer::bench_runtime(path, o);
          if (human && !records.empty()) fmt::print("{}", infer::bench_kernels_line(records[0]));
          for (auto& j : records) record(std::move(j));
          continue;
        }
        train::configure_threads(threads);
        model::ViT vit{nullptr};
        try {
          io::ImportHints hints;
          hints.merge_r = f->merge_r;
          vit = model::load_model(path, hints);
        } catch (const core::InputError& err) {
          // e.g. a quantized file: LibTorch eager runs fp32 model files only.
          record({{"model", path}, {"engine", engine}, {"error", err.what()}});
          continue;
        }
        vit->eval();
        torch::NoGradGuard no_grad;
        const auto& c = vit->config();
        for (int b : batches) {
          auto x = torch::randn({b, c.in_channels, c.image_size, c.image_size});
          const auto t = infer::time_runs(f->warmup, f->runs, [&] { (void)vit->forward(x); });
          auto j = infer::timing_record(path, engine, b, threads, f->runs, t);
          j["precision"] = "fp32";
          record(std::move(j));
        }
      }
    }
    if (f->common.json) print_json(out);
  });
}

}  // namespace vitopt::cli
