// Training-step throughput of vitopt (LibTorch C++) on the standard models, batch 128: forward,
// label-smoothed cross-entropy, backward, gradient clipping and AdamW — the exact step the trainer
// runs. Compare with peers/torch_train_step.py via bench/run_train_bench.sh (same threads).
#include <benchmark/benchmark.h>

#include "core/threads.h"
#include "io/presets.h"
#include "model/vit.h"
#include "train/adamw.h"
#include "train/torch_env.h"

namespace {

namespace F = torch::nn::functional;

void BM_TrainStep(benchmark::State& state, const std::string& preset) {
  const auto batch = state.range(0);
  const int threads = vitopt::train::configure_threads(static_cast<int>(state.range(1)));
  vitopt::model::ViT vit(vitopt::io::preset(preset));
  vit->init_weights(0);
  vit->train();
  const auto& c = vit->config();
  vitopt::train::AdamW opt(vit->named_parameters().pairs(), {});
  auto params = vit->parameters();
  auto x = torch::randn({batch, c.in_channels, c.image_size, c.image_size});
  auto y = torch::randint(0, c.num_classes, {batch}, torch::kLong);
  const auto ce = F::CrossEntropyFuncOptions().label_smoothing(0.1);
  for (auto _ : state) {
    auto loss = F::cross_entropy(vit->forward(x), y, ce);
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

}  // namespace

BENCHMARK_CAPTURE(BM_TrainStep, vit_fmnist, std::string("vit-fmnist"))
    ->Args({128, 0})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5.0);

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
