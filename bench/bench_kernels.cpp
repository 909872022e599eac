// Runtime kernels on real ViT shapes, each level the CPU supports, side by side with OpenBLAS
// sgemm (same thread count) so speed reads as a ratio in one run: fp32 GEMM, int8 GEMM (incl. the
// activation quantization), fused attention and LayerNorm, and the FMA / VNNI peak they are bound
// by. Counters: GFLOP/s (2 flops per MAC).
// Shapes M x K x N: 197x768x2304 (ViT-B qkv), 197x768x3072 (fc1), 197x3072x768 (fc2),
// 197x384x1152 (DeiT-S qkv), 50x128x384 (vit-fmnist qkv).
// Run: build/<dir>/bin/bench_kernels --benchmark_filter=... (VITOPT_BENCH_THREADS, default 2).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/threads.h"
#include "runtime/aligned_buffer.h"
#include "runtime/kernels/kernels.h"
#include "runtime/linear_layer.h"
#include "runtime/thread_pool.h"

extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void openblas_set_num_threads(int n);
}

namespace {

using namespace vitopt::runtime;
using kernels::Isa;

int bench_threads() {
  const char* env = std::getenv("VITOPT_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 2;
}

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

std::vector<float> randn(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void set_flops(benchmark::State& state, double macs) {
  state.counters["GFLOP/s"] = benchmark::Counter(2 * macs * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_GemmF32(benchmark::State& state, Isa isa) {
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto& kt = kernels::table(isa);
  auto a = randn(static_cast<size_t>(M) * K, 1), w = randn(static_cast<size_t>(N) * K, 2),
       bias = randn(static_cast<size_t>(N), 3);
  AlignedBuffer<float> packed(kt.packed_f32_floats(N, K)), c(static_cast<size_t>(M) * N);
  kt.pack_f32(w.data(), N, K, packed.data());
  kernels::GemmF32Args g;
  g.a = a.data(); g.lda = K; g.w = packed.data(); g.m = M; g.n = N; g.k = K;
  g.c = c.data(); g.ldc = N; g.ep.bias = bias.data();
  for (auto _ : state) {
    gemm_f32(kt, pool(), g);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, double(M) * K * N);
}

void BM_OpenBlasSgemm(benchmark::State& state) {
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  openblas_set_num_threads(bench_threads());
  auto a = randn(static_cast<size_t>(M) * K, 1), w = randn(static_cast<size_t>(N) * K, 2);
  std::vector<float> c(static_cast<size_t>(M) * N);
  const float one = 1, zero = 0;
  for (auto _ : state) {
    // Row-major C (M,N) = A (M,K) W^T  <=>  column-major C^T = W^T' A^T: sgemm('T','N', N, M, K).
    sgemm_("T", "N", &N, &M, &K, &one, w.data(), &K, a.data(), &K, &zero, c.data(), &N);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(vitopt::core::openblas_core());
  set_flops(state, double(M) * K * N);
}

void BM_GemmQ8(benchmark::State& state, Isa isa) {
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto& kt = kernels::table(isa);
  const int kp = (K + 3) / 4 * 4;
  std::vector<int8_t> w(static_cast<size_t>(N) * K);
  std::mt19937 rng(1);
  for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  AlignedBuffer<uint8_t> packed(kt.packed_q8_bytes(N, kp));
  kt.pack_q8(w.data(), N, K, kp, packed.data());
  const size_t pn = static_cast<size_t>((N + 63) / 64 * 64);
  AlignedBuffer<int32_t> cs(pn), zw(pn), ra(static_cast<size_t>(M)), rb(static_cast<size_t>(M));
  AlignedBuffer<float> ws(pn), rs(static_cast<size_t>(M)), c(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < pn; ++i) ws[i] = 0.01f;
  AlignedBuffer<uint8_t> act(static_cast<size_t>(M) * kp * kt.q8_act_bytes);
  auto x = randn(static_cast<size_t>(M) * K, 3);
  kernels::ActQuant q{-128, 127, false, true, 1.0f, 0};
  kernels::GemmQ8Args g;
  g.a = act.data(); g.lda = kp; g.w = packed.data(); g.m = M; g.n = N; g.kp = kp;
  g.row_a = ra.data(); g.row_b = rb.data(); g.row_scale = rs.data(); g.colsum = cs.data();
  g.wzp = zw.data(); g.wscale = ws.data(); g.c = c.data(); g.ldc = N;
  for (auto _ : state) {
    pool().run(2, [&](int t) {
      kt.quantize_rows({x.data(), K, M, K, kp, q, act.data(), kp, ra.data(), rb.data(), rs.data()},
                       t * M / 2, (t + 1) * M / 2);
    });
    gemm_q8(kt, pool(), g);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, double(M) * K * N);
}

void BM_Attention(benchmark::State& state, Isa isa) {
  const int N = static_cast<int>(state.range(0)), H = static_cast<int>(state.range(1)),
            D = static_cast<int>(state.range(2));
  const auto& kt = kernels::table(isa);
  const int HD = H * D, ld = 3 * HD, np = (N + 15) / 16 * 16;
  auto qkv = randn(static_cast<size_t>(N) * ld, 4);
  AlignedBuffer<float> kbuf(static_cast<size_t>(H) * D * np), ctx(static_cast<size_t>(N) * HD);
  kernels::AttentionArgs a;
  a.qkv = qkv.data(); a.ldqkv = ld; a.kt = kbuf.data(); a.np = np; a.batch = 1; a.tokens = N;
  a.heads = H; a.head_dim = D; a.scale = 1.0f / std::sqrt(float(D)); a.ctx = ctx.data(); a.ldctx = HD;
  for (auto _ : state) {
    pool().run(kernels::attention_tasks(a), [&](int t) { kernels::run_attention_task(kt.attention, a, t); });
    benchmark::DoNotOptimize(ctx.data());
  }
  set_flops(state, 2.0 * H * double(N) * N * D);
}

void BM_LayerNorm(benchmark::State& state, Isa isa) {
  const int rows = static_cast<int>(state.range(0)), C = static_cast<int>(state.range(1));
  const auto& kt = kernels::table(isa);
  auto x = randn(static_cast<size_t>(rows) * C, 5), g = randn(static_cast<size_t>(C), 6),
       b = randn(static_cast<size_t>(C), 7);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    kt.layernorm(x.data(), C, y.data(), C, rows, C, g.data(), b.data(), 1e-6f);
    benchmark::DoNotOptimize(y.data());
  }
}

// The machine's ceiling for the GEMMs above: 24 independent vfmadd231ps / vpdpbusd zmm chains per
// loop iteration on every pool thread (written in asm: GCC 12 adds a register copy per
// _mm512_dpbusd_epi32 in such loops, halving the rate). GFLOP/s counts 2 per MAC, as the GEMMs do.
#define VITOPT_R24(op) \
  op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15) op(16) op(17) op(18) op(19) op(20) op(21) \
  op(22) op(23) op(24) op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define VITOPT_FMA(n) "vfmadd231ps %%zmm1, %%zmm0, %%zmm" #n "\n\t"
#define VITOPT_VNNI(n) "vpdpbusd %%zmm1, %%zmm0, %%zmm" #n "\n\t"
void peak_loop(int64_t iters, bool vnni) {
#if defined(__x86_64__)
  if (vnni) {
    asm volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n1:\n\t" VITOPT_R24(VITOPT_VNNI)
                 "dec %0\n\tjnz 1b" : "+r"(iters) : : "memory");
  } else {
    asm volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n1:\n\t" VITOPT_R24(VITOPT_FMA)
                 "dec %0\n\tjnz 1b" : "+r"(iters) : : "memory");
  }
#else
  (void)iters;
  (void)vnni;
#endif
}

void BM_Peak(benchmark::State& state, bool vnni) {
  constexpr int64_t kIters = 1 << 20;
  for (auto _ : state) pool().run(pool().size(), [&](int) { peak_loop(kIters, vnni); });
  const double per_thread = 24.0 * kIters * (vnni ? 64 : 16) * 2;
  state.counters["GFLOP/s"] = benchmark::Counter(per_thread * pool().size() * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  for (auto s : std::vector<std::vector<int64_t>>{{197, 768, 2304}, {197, 768, 3072}, {197, 3072, 768},
                                                  {197, 384, 1152}, {50, 128, 384}})
    b->Args(s);
  b->ArgNames({"M", "K", "N"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void register_all() {
  benchmark::RegisterBenchmark("OpenBlasSgemm", BM_OpenBlasSgemm)->Apply(gemm_shapes);
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512}) {
    if (!kernels::cpu_supports(isa)) continue;
    const std::string n = kernels::isa_name(isa);
    if (isa == Isa::kAvx512) {
      benchmark::RegisterBenchmark("Peak/avx512/fma_f32", BM_Peak, false)->UseRealTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark("Peak/avx512/vnni_u8s8", BM_Peak, true)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
    if (isa != Isa::kRef) {
      benchmark::RegisterBenchmark(("GemmF32/" + n).c_str(), BM_GemmF32, isa)->Apply(gemm_shapes);
      benchmark::RegisterBenchmark(("GemmQ8/" + n).c_str(), BM_GemmQ8, isa)->Apply(gemm_shapes);
    }
    benchmark::RegisterBenchmark(("Attention/" + n).c_str(), BM_Attention, isa)
        ->Args({197, 6, 64})->Args({50, 4, 32})->ArgNames({"N", "H", "D"})->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("LayerNorm/" + n).c_str(), BM_LayerNorm, isa)
        ->Args({197, 384})->ArgNames({"rows", "C"})->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  vitopt::core::ensure_thread_environment(argc, argv);  // OpenBLAS's right kernels (see threads.h)
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
