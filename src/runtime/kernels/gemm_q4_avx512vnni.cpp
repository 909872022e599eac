// Integer GEMM, nibble-packed int4 weights, avx512vnni level: the nibbles c = q + 8 (0..15)
// unpacked in registers (and / shift: 3 instructions per 128 weights) feed vpdpbusd on zmm as its
// signed operand; u8 activations. Half the weight bytes of the int8 kernel for the same MACs.
// 12 x 32 int32 tile.
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

struct Q4NibblesVnni {
  static constexpr int kK = 4, kStepBytes = kIntNr * 4 / 2, kMr = 12;
  using Act = uint8_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_quads_nibbles<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m512i& b0, __m512i& b1) {
    const __m512i v = _mm512_loadu_si512(p);
    const __m512i low = _mm512_set1_epi8(0x0f);
    b0 = _mm512_and_si512(v, low);
    b1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  }
  static __m512i dot(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
};

}  // namespace

void fill_gemm_q4_avx512vnni(GemmIntKernels& k) {
  int_fill<Q4NibblesVnni>(k, Isa::kAvx512Vnni, 4, 8, quantize_rows_u8_avx512);
}

}  // namespace vitopt::runtime::kernels
