// End-to-end vitopt runtime latency on the standard shapes with random weights synthesized in
// process (no LibTorch): vit-fmnist, deit-tiny, deit-small, vit-base-16 x fp32 / int8 (dynamic
// per-token inputs) / int4 weights x batch 1 and 32. Peers for the same shapes: PyTorch eager
// (peers/torch_infer.py) and ONNX Runtime (peers/ort_infer.mjs), run side by side by
// run_runtime_bench.sh. Threads: VITOPT_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>

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

Engine& engine(const std::string& preset, int bits) {
  static std::map<std::pair<std::string, int>, std::unique_ptr<Engine>> cache;
  auto& slot = cache[{preset, bits}];
  if (!slot) {
    RandomModelOptions o;
    o.config = io::preset(preset);
    o.weight_std = 0.02f;
    if (bits > 0) {
      o.weight_bits = bits;
      o.input_bits = 8;
      o.input_dynamic = true;
    }
    RuntimeOptions ro;
    ro.threads = bench_threads();
    slot = Engine::load_bytes(random_model_bytes(o), preset, ro);
  }
  return *slot;
}

void BM_Runtime(benchmark::State& state, const std::string& preset, int bits) {
  Engine& e = engine(preset, bits);
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
  state.SetLabel(info.precision + " " + info.isa);
}

}  // namespace

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);
  for (const std::string preset : {"vit-fmnist", "deit-tiny", "deit-small", "vit-base-16"}) {
    for (int bits : {0, 8, 4}) {
      const std::string name = "Runtime/" + preset + "/" + (bits == 0 ? "fp32" : bits == 8 ? "int8" : "int4");
      benchmark::RegisterBenchmark(name.c_str(), BM_Runtime, preset, bits)
          ->ArgName("batch")->Arg(1)->Arg(32)->UseRealTime()->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
