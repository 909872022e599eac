// Dense vs factor-pair timing on runtime::LinearOp with random weights (the speed of an fp32 GEMM
// does not depend on the values).
#include "compress/lowrank/linear_speed.h"

#include <algorithm>
#include <random>
#include <vector>

#include "core/threads.h"
#include "core/timer.h"
#include "runtime/linear_layer.h"

namespace vitopt::lowrank {
namespace {

runtime::LinearData random_linear(int in, int out, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.f, 0.05f);
  runtime::LinearData d;
  d.name = "timing";
  d.in = in;
  d.out = out;
  d.w.resize(static_cast<size_t>(in) * out);
  for (auto& v : d.w) v = dist(rng);
  d.bias.assign(static_cast<size_t>(out), 0.01f);
  return d;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::string timing_isa() { return runtime::kernels::isa_name(runtime::kernels::default_isa()); }

LinearSpeed time_linear(int m, int in, int out, int rank, int threads, int rounds) {
  const auto& kt = runtime::kernels::table(runtime::kernels::default_isa());
  runtime::ThreadPool pool(threads > 0 ? threads : core::available_cores());
  std::mt19937 rng(7);
  const runtime::LinearOp dense(random_linear(in, out, rng), kt, false, false);
  const runtime::LinearOp first(random_linear(in, rank, rng), kt, false, false);
  const runtime::LinearOp second(random_linear(rank, out, rng), kt, false, false);
  runtime::LinearScratch scratch;
  std::vector<float> x(static_cast<size_t>(m) * in, 0.5f), mid(static_cast<size_t>(m) * rank),
      y(static_cast<size_t>(m) * out);
  auto run_dense = [&] { dense.run(pool, scratch, x.data(), in, m, y.data(), out, false, false); };
  auto run_factored = [&] {
    first.run(pool, scratch, x.data(), in, m, mid.data(), rank, false, false);
    second.run(pool, scratch, mid.data(), rank, m, y.data(), out, false, false);
  };
  // Enough calls per round for ~2 ms of work, so timer resolution and wake-ups do not dominate.
  const double macs = static_cast<double>(m) * in * out;
  const int calls = std::clamp(static_cast<int>(2e6 / std::max(macs / 1e3, 1.0)), 3, 2000);
  for (int i = 0; i < calls; ++i) run_dense(), run_factored();  // warm caches and the pool
  std::vector<double> d, f;
  for (int r = 0; r < std::max(rounds, 1); ++r) {
    core::Stopwatch a;
    for (int i = 0; i < calls; ++i) run_dense();
    d.push_back(a.seconds() * 1e6 / calls);
    core::Stopwatch b;
    for (int i = 0; i < calls; ++i) run_factored();
    f.push_back(b.seconds() * 1e6 / calls);
  }
  return {median(d), median(f)};
}

}  // namespace vitopt::lowrank
