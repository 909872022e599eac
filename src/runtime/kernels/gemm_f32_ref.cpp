// fp32 GEMM, scalar reference: weights stay in their (N, K) row-major layout, sums run in k order.
// This is the spec the SIMD versions are tested against; it also hosts gelu_ref.
#include <cmath>
#include <cstring>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

constexpr int kNr = 16;  // pseudo panel width (work split granularity only)

size_t packed_floats(int n, int k) { return static_cast<size_t>(n) * static_cast<size_t>(k); }

void pack(const float* w, int n, int k, float* out) {
  std::memcpy(out, w, packed_floats(n, k) * sizeof(float));
}

void gemm(const GemmF32Args& g, int p0, int p1, int r0, int r1) {
  const int n1 = std::min(g.n, p1 * kNr);
  for (int i = r0; i < r1; ++i) {
    const float* a = g.a + static_cast<size_t>(i) * static_cast<size_t>(g.lda);
    float* c = g.c + static_cast<size_t>(i) * static_cast<size_t>(g.ldc);
    for (int o = p0 * kNr; o < n1; ++o) {
      const float* w = g.w + static_cast<size_t>(o) * static_cast<size_t>(g.k);
      float acc = 0.0f;
      for (int kk = 0; kk < g.k; ++kk) acc += a[kk] * w[kk];
      if (g.ep.bias != nullptr) acc += g.ep.bias[o];
      if (g.ep.gelu) acc = gelu_ref(acc);
      c[o] = g.ep.accumulate ? c[o] + acc : acc;
    }
  }
}

}  // namespace

float gelu_ref(float x) {
  return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752440f));
}

void fill_gemm_f32_ref(KernelTable& t) {
  t.f32_mr = 4;
  t.f32_nr = kNr;
  t.packed_f32_floats = packed_floats;
  t.pack_f32 = pack;
  t.gemm_f32 = gemm;
}

}  // namespace vitopt::runtime::kernels
