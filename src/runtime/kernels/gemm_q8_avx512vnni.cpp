// Integer GEMM, int8 weights, avx512vnni level (Ice Lake-SP, Sapphire Rapids, Zen 4): u8
// activations times s8 weights with vpdpbusd on zmm (64 MACs and the accumulate per
// instruction, exact in int32). Panels of 32 outputs, 4 consecutive k per output; 12 x 32 int32
// tile (24 accumulators of 32 registers).
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/epilogue_impl.inc"
#include "runtime/kernels/gemm_int_impl.inc"

struct Q8QuadsVnni {
  static constexpr int kK = 4, kStepBytes = kIntNr * 4, kMr = 12;
  using Act = uint8_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_codes_s8<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m512i& b0, __m512i& b1) {
    b0 = _mm512_loadu_si512(p);
    b1 = _mm512_loadu_si512(p + 64);
  }
  static __m512i dot(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
};

}  // namespace

void fill_gemm_q8_avx512vnni(GemmIntKernels& k) {
  int_fill<Q8QuadsVnni>(k, Isa::kAvx512Vnni, 8, 0, quantize_rows_u8_avx512);
}

}  // namespace vitopt::runtime::kernels
