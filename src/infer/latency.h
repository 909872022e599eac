// `bench`: latency percentiles of repeated runs, and the runtime engine's measurement per model
// and batch size. The timing helpers are engine-agnostic (`vitopt bench --engine torch` uses them
// with a LibTorch forward); inputs are random normal values, warm-up runs first.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vitopt/runtime.h"

namespace vitopt::infer {

struct Timing {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;  // milliseconds
};

// Percentiles by linear interpolation between sorted samples (p50 of {1, 2} is 1.5).
Timing summarize(std::vector<double> ms);
// `warmup` untimed calls, then `runs` timed ones.
Timing time_runs(int warmup, int runs, const std::function<void()>& fn);

// "1,8,32" -> {1, 8, 32}; InputError naming --batch for anything else.
std::vector<int> parse_batch_list(const std::string& text);

struct BenchOptions {
  std::vector<int> batches{1};
  int warmup = 3, runs = 20;
  runtime::RuntimeOptions runtime;
};

// One record per batch size: {model, engine:"runtime", batch, threads, runs, p50_ms, p90_ms,
// p99_ms, mean_ms, images_per_s, precision, isa, cpu, kernels: {level, fp32, int8, int4,
// int4_kernel}} (the implementation per kernel family at that level; int4_kernel "" when the
// model has no <= 4-bit integer Linears).
nlohmann::json bench_runtime(const std::string& model_file, const BenchOptions& options);
// The record above for any engine (what bench_runtime and the LibTorch bench both print).
nlohmann::json timing_record(const std::string& model, const std::string& engine, int batch,
                             int threads, int runs, const Timing& t);

// "<model>  kernels: level L (fp32 .., int8 .., int4 ..)[, <= 4-bit weights as packed|int8]\n"
// from a bench_runtime record ("" for a record without kernels): printed once per model.
std::string bench_kernels_line(const nlohmann::json& record);

// The table `bench` prints: header once, then one line per record.
std::string bench_table_header();
std::string bench_table_row(const nlohmann::json& record);

}  // namespace vitopt::infer
