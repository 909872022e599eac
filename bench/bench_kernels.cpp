// Runtime kernels on real ViT shapes, every implementation of every family the CPU supports (each
// reached by forcing the level that chooses it, kernels.h), side by side with OpenBLAS sgemm
// (same thread count) so speed reads as a ratio in one run: fp32 GEMM, int8 GEMM and packed-int4
// GEMM (incl. the activation quantization), fused attention and LayerNorm, and the measured peaks
// they are bound by (FMA, vpdpbusd, vpmaddwd; ymm and zmm). Counters: GFLOP/s (2 flops per MAC).
// Names: <Family>/<implementation>; the label lists the levels that run that implementation.
// Shapes M x K x N: 197x768x2304 (ViT-B qkv), 197x768x3072 (fc1), 197x3072x768 (fc2),
// 197x384x1152 (DeiT-S qkv), 197x1536x384 (DeiT-S fc2), DeiT-S fc1 at 197, 101 and 41 tokens
// (token merging's r = 0, 8, 13 by the last block), 50x128x384 (vit-fmnist qkv); 6304x384x1152
// (DeiT-S qkv, batch 32).
// Run: build/<dir>/bin/bench_kernels --benchmark_filter=... (VITOPT_BENCH_THREADS, default 2).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
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

// Copies of a GEMM's packed weights to cycle through: one (hot), or enough to fill 256 MiB, more
// than any cache (cold).
size_t weight_copies(size_t bytes, bool cold) {
  return cold ? std::max<size_t>(2, (size_t{256} << 20) / bytes) : 1;
}

// fp32 GEMM; cold: the weights are cold, as in a batch-1 forward whose weights exceed the caches
// (DeiT-S: 88 MB of fp32): each iteration uses the next of enough packed copies to fill 256 MiB;
// prefetch: the kernel prefetches the weight panels (what the engine asks for such models).
void BM_GemmF32(benchmark::State& state, Isa isa, bool cold, bool prefetch) {
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto& kt = kernels::table(isa);
  auto a = randn(static_cast<size_t>(M) * K, 1), w = randn(static_cast<size_t>(N) * K, 2),
       bias = randn(static_cast<size_t>(N), 3);
  const size_t floats = kt.packed_f32_floats(N, K);
  const size_t copies = weight_copies(floats * sizeof(float), cold);
  AlignedBuffer<float> packed(floats * copies), c(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < copies; ++i) kt.pack_f32(w.data(), N, K, packed.data() + i * floats);
  kernels::GemmF32Args g;
  g.a = a.data();
  g.lda = K;
  g.m = M;
  g.n = N;
  g.k = K;
  g.c = c.data();
  g.ldc = N;
  g.ep.bias = bias.data();
  g.prefetch_weights = prefetch;
  size_t next = 0;
  for (auto _ : state) {
    g.w = packed.data() + next * floats;
    next = (next + 1) % copies;
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

// An integer GEMM family (int8 or packed int4 weights) including the activation quantization;
// cold and prefetch as in BM_GemmF32.
void BM_GemmInt(benchmark::State& state, Isa isa, bool int4, bool cold, bool prefetch) {
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto& ik = int4 ? kernels::table(isa).q4 : kernels::table(isa).q8;
  const int kp = (K + ik.kgroup - 1) / ik.kgroup * ik.kgroup;
  std::vector<int8_t> w(static_cast<size_t>(N) * K);
  std::mt19937 rng(1);
  const int qmax = int4 ? 7 : 127;
  for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % static_cast<unsigned>(2 * qmax + 1)) - qmax);
  const size_t bytes = ik.packed_bytes(N, kp);
  const size_t copies = weight_copies(bytes, cold);
  AlignedBuffer<uint8_t> packed(bytes * copies);
  for (size_t i = 0; i < copies; ++i) ik.pack(w.data(), N, K, kp, packed.data() + i * bytes);
  const size_t pn = static_cast<size_t>((N + 63) / 64 * 64);
  AlignedBuffer<int32_t> cs(pn), zw(pn), ra(static_cast<size_t>(M)), rb(static_cast<size_t>(M));
  AlignedBuffer<float> ws(pn), rs(static_cast<size_t>(M)), c(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < pn; ++i) ws[i] = 0.01f;
  AlignedBuffer<uint8_t> act(static_cast<size_t>(M) * kp * ik.act_bytes);
  auto x = randn(static_cast<size_t>(M) * K, 3);
  // Static activation ranges and symmetric weights, what `vitopt quantize` writes by default; the
  // epilogue then takes LinearOp's per-column terms (GemmIntArgs::col_offset / col_scale).
  kernels::ActQuant q{-128, 127, false, false, 0.05f, 3};
  AlignedBuffer<int32_t> col_offset(pn);
  AlignedBuffer<float> col_scale(pn);
  for (size_t i = 0; i < pn; ++i) col_scale[i] = q.scale * ws[i];
  kernels::GemmIntArgs g;
  if (ik.code_offset == 0) {  // int4 nibbles store code + 8: per-row terms, as in LinearOp
    g.col_offset = col_offset.data();
    g.col_scale = col_scale.data();
  }
  g.a = act.data(); g.lda = kp; g.w = packed.data(); g.m = M; g.n = N; g.kp = kp;
  g.row_a = ra.data(); g.row_b = rb.data(); g.row_scale = rs.data(); g.colsum = cs.data();
  g.wzp = zw.data();
  g.wscale = ws.data();
  g.c = c.data();
  g.ldc = N;
  g.prefetch_weights = prefetch;
  const int chunks = pool().size();
  size_t next = 0;
  for (auto _ : state) {
    g.w = packed.data() + next * bytes;
    next = (next + 1) % copies;
    pool().run(chunks, [&](int t) {
      ik.quantize_rows({x.data(), K, M, K, kp, q, act.data(), kp, ra.data(), rb.data(), rs.data()},
                       t * M / chunks, (t + 1) * M / chunks);
    });
    gemm_int(ik, pool(), g);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, double(M) * K * N);
  state.counters["weight_MB"] = static_cast<double>(bytes) / 1e6;
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

// The machine's ceilings for the GEMMs above: 24 independent accumulator chains per loop
// iteration on every pool thread (written in asm: GCC 12 adds a register copy per
// _mm512_dpbusd_epi32 in such loops, halving the rate). GFLOP/s counts 2 per MAC, as the GEMMs
// do: vfmadd231ps (fp32), vpdpbusd (u8 x s8 quads, VNNI), vpmaddwd + vpaddd (s16 pairs: the
// exact non-VNNI int8 kernels), each on zmm and ymm.
enum class PeakOp { kFma, kVnni, kMaddwd };
#define VITOPT_R24(op) \
  op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15) op(16) op(17) op(18) op(19) op(20) op(21) \
  op(22) op(23) op(24) op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define VITOPT_R12(op) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)
#define VITOPT_FMA_Z(n) "vfmadd231ps %%zmm1, %%zmm0, %%zmm" #n "\n\t"
#define VITOPT_VNNI_Z(n) "vpdpbusd %%zmm1, %%zmm0, %%zmm" #n "\n\t"
#define VITOPT_MADD_Z(n) "vpmaddwd %%zmm1, %%zmm0, %%zmm2\n\tvpaddd %%zmm2, %%zmm" #n ", %%zmm" #n "\n\t"
#define VITOPT_FMA_Y(n) "vfmadd231ps %%ymm1, %%ymm0, %%ymm" #n "\n\t"
#define VITOPT_VNNI_Y(n) "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm" #n "\n\t"
#define VITOPT_MADD_Y(n) "vpmaddwd %%ymm1, %%ymm0, %%ymm2\n\tvpaddd %%ymm2, %%ymm" #n ", %%ymm" #n "\n\t"
#define VITOPT_PEAK_ASM(body, zero) \
  asm volatile(zero "%%xmm0, %%xmm0, %%xmm0\n\t" zero "%%xmm1, %%xmm1, %%xmm1\n1:\n\t" body "dec %0\n\tjnz 1b" \
               : "+r"(iters) : : "memory")
void peak_loop(int64_t iters, PeakOp op, bool zmm) {
#if defined(__x86_64__)
  if (zmm) {
    switch (op) {
      case PeakOp::kFma: VITOPT_PEAK_ASM(VITOPT_R24(VITOPT_FMA_Z), "vpxor "); break;
      case PeakOp::kVnni: VITOPT_PEAK_ASM(VITOPT_R24(VITOPT_VNNI_Z), "vpxor "); break;
      case PeakOp::kMaddwd: VITOPT_PEAK_ASM(VITOPT_R24(VITOPT_MADD_Z), "vpxor "); break;
    }
  } else {
    switch (op) {  // 12 chains: ymm4..15 (16 registers without AVX-512)
      case PeakOp::kFma: VITOPT_PEAK_ASM(VITOPT_R12(VITOPT_FMA_Y) VITOPT_R12(VITOPT_FMA_Y), "vpxor "); break;
      case PeakOp::kVnni: VITOPT_PEAK_ASM(VITOPT_R12(VITOPT_VNNI_Y) VITOPT_R12(VITOPT_VNNI_Y), "vpxor "); break;
      case PeakOp::kMaddwd: VITOPT_PEAK_ASM(VITOPT_R12(VITOPT_MADD_Y) VITOPT_R12(VITOPT_MADD_Y), "vpxor "); break;
    }
  }
#else
  (void)iters;
  (void)op;
  (void)zmm;
#endif
}

void BM_Peak(benchmark::State& state, PeakOp op, bool zmm) {
  constexpr int64_t kIters = 1 << 20;
  for (auto _ : state) pool().run(pool().size(), [&](int) { peak_loop(kIters, op, zmm); });
  // MACs per instruction: fp32 16 (zmm) / 8 (ymm); vpdpbusd 64 / 32; vpmaddwd 32 / 16.
  const double lanes = zmm ? 16 : 8;
  const double macs = op == PeakOp::kFma ? lanes : op == PeakOp::kVnni ? 4 * lanes : 2 * lanes;
  const double per_thread = 24.0 * static_cast<double>(kIters) * macs * 2;
  state.counters["GFLOP/s"] = benchmark::Counter(per_thread * pool().size() * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  for (auto s : std::vector<std::vector<int64_t>>{{197, 768, 2304},
                                                  {197, 768, 3072},
                                                  {197, 3072, 768},
                                                  {197, 384, 1152},
                                                  {197, 384, 1536},
                                                  {197, 1536, 384},
                                                  {101, 384, 1536},
                                                  {41, 384, 1536},
                                                  {50, 128, 384},
                                                  {6304, 384, 1152}})
    b->Args(s);
  b->ArgNames({"M", "K", "N"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// Every implementation of every family once, under the best level that runs it (names are the
// implementation; kernels.h's choose_kernels says which levels pick which).
void register_all() {
  benchmark::RegisterBenchmark("OpenBlasSgemm", BM_OpenBlasSgemm)->Apply(gemm_shapes);
  const kernels::CpuFeatures& f = kernels::cpu_features();
  struct PeakCase {
    const char* name;
    bool supported;
    PeakOp op;
    bool zmm;
  };
  for (const PeakCase& p : {PeakCase{"Peak/fma_f32_ymm", f.avx2, PeakOp::kFma, false},
                            PeakCase{"Peak/fma_f32_zmm", f.avx512, PeakOp::kFma, true},
                            PeakCase{"Peak/maddwd_s16_ymm", f.avx2, PeakOp::kMaddwd, false},
                            PeakCase{"Peak/maddwd_s16_zmm", f.avx512, PeakOp::kMaddwd, true},
                            PeakCase{"Peak/vnni_u8s8_ymm", f.avx_vnni, PeakOp::kVnni, false},
                            PeakCase{"Peak/vnni_u8s8_zmm", f.avx512_vnni, PeakOp::kVnni, true}}) {
    if (p.supported)
      benchmark::RegisterBenchmark(p.name, BM_Peak, p.op, p.zmm)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  std::set<std::string> seen;
  auto once = [&](const std::string& name) { return seen.insert(name).second; };
  for (Isa isa : kernels::kAllIsas) {
    if (!kernels::cpu_supports(isa)) continue;
    const kernels::KernelTable& t = kernels::table(isa);
    const std::string f32 = kernels::isa_name(t.fp32_isa), q8 = kernels::isa_name(t.q8.isa),
                      q4 = kernels::isa_name(t.q4.isa);
    // Hot weights; cold ones as the engine runs them (prefetched) and without the prefetch.
    struct Variant {
      const char* suffix;
      bool cold, prefetch;
    };
    for (const Variant v : {Variant{"/", false, false}, Variant{"ColdWeights/", true, true},
                            Variant{"ColdWeightsNoPrefetch/", true, false}}) {
      const std::string f32n = "GemmF32" + std::string(v.suffix) + f32,
                        q8n = "GemmQ8" + std::string(v.suffix) + q8,
                        q4n = "GemmQ4" + std::string(v.suffix) + q4;
      if (t.fp32_isa != Isa::kRef && once(f32n))
        benchmark::RegisterBenchmark(f32n.c_str(), BM_GemmF32, isa, v.cold, v.prefetch)
            ->Apply(gemm_shapes);
      if (t.q8.isa != Isa::kRef && once(q8n))
        benchmark::RegisterBenchmark(q8n.c_str(), BM_GemmInt, isa, false, v.cold, v.prefetch)
            ->Apply(gemm_shapes);
      if (t.q4.isa != Isa::kRef && once(q4n))
        benchmark::RegisterBenchmark(q4n.c_str(), BM_GemmInt, isa, true, v.cold, v.prefetch)
            ->Apply(gemm_shapes);
    }
    if (once("Attention/" + f32))
      benchmark::RegisterBenchmark(("Attention/" + f32).c_str(), BM_Attention, isa)
          ->Args({197, 6, 64})->Args({50, 4, 32})->ArgNames({"N", "H", "D"})->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    if (once("LayerNorm/" + f32))
      benchmark::RegisterBenchmark(("LayerNorm/" + f32).c_str(), BM_LayerNorm, isa)
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
