// Integer GEMM with nibble-packed int4 weights, scalar reference (the spec of the packed format):
// weights (N, Kp/2) bytes, k = 2j in the low nibble of byte j and k = 2j + 1 in the high one,
// each stored as c = q + 8 (0..15, codes of 2..4 bits); u8 activations (q + 128). The int32 sum
// of u * c with colsum and zero points taken over c (kernels.h) gives exactly the int8 result.
#include <algorithm>
#include <cstring>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

constexpr int kNr = 16;  // pseudo panel width (work split granularity only)

size_t packed_bytes(int n, int kp) { return static_cast<size_t>(n) * static_cast<size_t>(kp / 2); }

void pack(const int8_t* w, int n, int k, int kp, void* out) {
  auto* o = static_cast<uint8_t*>(out);
  for (int r = 0; r < n; ++r) {
    uint8_t* row = o + static_cast<size_t>(r) * static_cast<size_t>(kp / 2);
    for (int j = 0; j < kp / 2; ++j) {
      const int k0 = 2 * j, k1 = 2 * j + 1;
      const int c0 = (k0 < k ? w[static_cast<size_t>(r) * static_cast<size_t>(k) + static_cast<size_t>(k0)] : 0) + 8;
      const int c1 = (k1 < k ? w[static_cast<size_t>(r) * static_cast<size_t>(k) + static_cast<size_t>(k1)] : 0) + 8;
      row[j] = static_cast<uint8_t>(c0 | (c1 << 4));
    }
  }
}

void gemm(const GemmIntArgs& g, int p0, int p1, int r0, int r1) {
  const int n1 = std::min(g.n, p1 * kNr);
  const auto* act = static_cast<const uint8_t*>(g.a);
  const auto* wq = static_cast<const uint8_t*>(g.w);
  for (int i = r0; i < r1; ++i) {
    const uint8_t* a = act + static_cast<size_t>(i) * static_cast<size_t>(g.lda);
    float* c = g.c + static_cast<size_t>(i) * static_cast<size_t>(g.ldc);
    for (int o = p0 * kNr; o < n1; ++o) {
      const uint8_t* w = wq + static_cast<size_t>(o) * static_cast<size_t>(g.kp / 2);
      int32_t acc = 0;
      for (int j = 0; j < g.kp / 2; ++j) {
        acc += static_cast<int32_t>(a[2 * j]) * (w[j] & 0x0f);
        acc += static_cast<int32_t>(a[2 * j + 1]) * (w[j] >> 4);
      }
      acc = acc - g.row_a[i] * g.colsum[o] - g.row_b[i] * g.wzp[o];
      float y = static_cast<float>(acc) * (g.row_scale[i] * g.wscale[o]);
      if (g.ep.bias != nullptr) y = y + g.ep.bias[o];
      if (g.ep.gelu) y = gelu_ref(y);
      c[o] = g.ep.accumulate ? c[o] + y : y;
    }
  }
}

}  // namespace

void fill_gemm_q4_ref(GemmIntKernels& k) {
  k.isa = Isa::kRef;
  k.mr = 4;
  k.nr = kNr;
  k.kgroup = 4;
  k.act_bytes = 1;
  k.max_bits = 4;
  k.code_offset = 8;
  k.packed_bytes = packed_bytes;
  k.pack = pack;
  k.gemm = gemm;
  k.quantize_rows = quantize_rows_u8_ref;
}

}  // namespace vitopt::runtime::kernels
