// End-to-end vitopt runtime latency on the standard shapes with random weights synthesized in
// process (no LibTorch): vit-fmnist, deit-tiny, deit-small, vit-base-16 x fp32 / int8 (dynamic
// per-token inputs) / int4 weights x batch 1 and 32. int4 runs the engine's rule (RuntimeOptions::
// int4 "auto"); int4-packed and int4-int8 force each kernel, so one run shows whether the rule
// chose the faster. Kernel level: $VITOPT_ISA or the best the CPU has (in each label). Peers for
// the same shapes: PyTorch eager (peers/torch_infer.py) and ONNX Runtime (peers/ort_infer.cjs),
// run side by side by run_runtime_bench.sh. Threads: VITOPT_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>

#include "core/threads.h"
#include "io/presets.h"
#include "runtime/random_model.h"
#include "vitopt/runtime.h"

namespace {

using namespace vitopt::runtime;

int bench_threads() {
  const char* env = std::getenv("VITOPT_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 2;
}

// Quantized variants take dynamic per-token input ranges (as PyTorch's dynamic int8 does) unless
// static_inputs: one calibrated range per Linear input, what `vitopt quantize` writes by default.
Engine& engine(const std::string& preset, int bits, const std::string& int4, bool static_inputs) {
  static std::map<std::tuple<std::string, int, std::string, bool>, std::unique_ptr<Engine>> cache;
  auto& slot = cache[{preset, bits, int4, static_inputs}];
  if (!slot) {
    RandomModelOptions o;
    o.config = vitopt::io::preset(preset);
    o.weight_std = 0.02f;
    if (bits > 0) {
      o.weight_bits = bits;
      o.input_bits = 8;
      o.input_dynamic = !static_inputs;
    }
    RuntimeOptions ro;
    ro.threads = bench_threads();
    ro.int4 = int4;
    slot = Engine::load_bytes(random_model_bytes(o), preset, ro);
  }
  return *slot;
}

void BM_Runtime(benchmark::State& state, const std::string& preset, int bits,
                const std::string& int4, bool static_inputs) {
  Engine& e = engine(preset, bits, int4, static_inputs);
  const int batch = static_cast<int>(state.range(0));
  const auto& info = e.info();
  std::vector<float> x(static_cast<size_t>(batch) * info.in_channels * info.image_size * info.image_size);
  std::mt19937 rng(0);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<float> y(static_cast<size_t>(batch) * info.num_classes);
  e.run(x.data(), batch, y.data());  // builds the plan
  for (auto _ : state) {
    e.run(x.data(), batch, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(batch) * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
  state.SetLabel(info.precision + " level=" + info.isa + " fp32=" + info.isa_fp32 + " int8=" + info.isa_int8 +
                 " int4=" + info.isa_int4 + (info.int4_kernel.empty() ? "" : " int4_kernel=" + info.int4_kernel));
}

}  // namespace

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);
  for (const std::string preset : {"vit-fmnist", "deit-tiny", "deit-small", "vit-base-16"}) {
    const std::tuple<const char*, int, const char*, bool> variants[] = {
        {"fp32", 0, "", false},
        {"int8", 8, "", false},
        {"int8-static", 8, "", true},
        {"int4", 4, "auto", false},
        {"int4-packed", 4, "packed", false},
        {"int4-int8", 4, "int8", false}};
    for (const auto& [prec, bits, int4, static_inputs] : variants) {
      const std::string name = "Runtime/" + preset + "/" + prec;
      benchmark::RegisterBenchmark(name.c_str(), BM_Runtime, preset, bits, std::string(int4),
                                   static_inputs)
          ->ArgName("batch")
          ->Arg(1)
          ->Arg(32)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
