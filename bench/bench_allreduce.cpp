// Gradient all-reduce time per training step, as the trainer does it (GradientSync: buckets
// started from gradient hooks, averaged), for a model preset's full set of gradients. Run one
// process per rank, e.g.:
//   vitopt launch --nproc-per-node 2 --threads 1 -- build/release/bin/bench_allreduce deit-small
// Rank 0 prints one JSON line: model, parameters, gradient bytes, buckets, ms per all-reduce.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "io/presets.h"
#include "model/vit.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/world.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace d = vitopt::train::dist;

// A backward whose gradients are fixed random tensors: the hooks fire as in training, but the
// compute is negligible, so time(backward + finish) - time(backward) is the communication.
double step_ms(std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads,
               d::GradientSync* sync, int iterations) {
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) {
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    torch::Tensor loss = torch::zeros({});
    for (size_t k = 0; k < params.size(); ++k) loss = loss + (params[k] * grads[k]).sum();
    loss.backward();
    if (sync) sync->finish();
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "vit-fmnist";
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 20;
  try {
    const auto resolved = d::resolve_world({});
    d::init_process_group(resolved.world);
    at::set_num_threads(1);
    vitopt::model::ViT vit(vitopt::io::preset(preset));
    auto params = vit->parameters();
    std::vector<torch::Tensor> grads;
    int64_t elements = 0;
    for (const auto& p : params) {
      grads.push_back(torch::randn_like(p));
      elements += p.numel();
    }
    // The backward alone first: once a GradientSync exists its hooks fire on every backward, and
    // each backward must then be followed by finish().
    step_ms(params, grads, nullptr, 3);  // warm-up: allocations
    const double base = step_ms(params, grads, nullptr, iterations);
    std::unique_ptr<d::GradientSync> sync;
    if (d::current() != nullptr) sync = std::make_unique<d::GradientSync>(*d::current(), params);
    step_ms(params, grads, sync.get(), 3);  // warm-up: connections
    const double with_sync = step_ms(params, grads, sync.get(), iterations);
    if (resolved.world.rank == 0)
      fmt::print(
          "{{\"model\": \"{}\", \"world_size\": {}, \"params\": {}, \"gradient_bytes\": {}, "
          "\"buckets\": {}, \"backward_ms\": {:.3f}, \"allreduce_ms\": {:.3f}}}\n",
          preset, resolved.world.world_size, elements, elements * 4,
          sync ? sync->bucket_count() : 0, base, std::max(0.0, with_sync - base));
    if (d::current() != nullptr) d::current()->barrier();
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_allreduce: {}\n", e.what());
    return 1;
  }
  return 0;
}
