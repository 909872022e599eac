// Integer GEMM, int8 weights, avx512 level (AVX-512 F/BW without VNNI: Skylake-SP): s16
// activations (u = q + 128) times s8 weights sign-extended to s16 in registers (vpmovsxbw, so
// memory holds one byte per weight), vpmaddwd over pairs of k. Exact: |u w + u' w'| <= 2 * 255 *
// 128 fits the int32 lanes, whereas vpmaddubsw (u8 x s8) would saturate its int16 pair sums.
// 12 x 32 int32 tile (24 accumulators of 32 zmm registers).
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

struct Q8PairsWidened {
  static constexpr int kK = 2, kStepBytes = kIntNr * 2, kMr = 12;
  using Act = int16_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_codes_s8<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m512i& b0, __m512i& b1) {
    b0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
  }
  static __m512i dot(__m512i acc, __m512i a, __m512i b) { return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b)); }
};

}  // namespace

void fill_gemm_q8_avx512(GemmIntKernels& k) {
  int_fill<Q8PairsWidened>(k, Isa::kAvx512, 8, 0, quantize_rows_s16_avx512);
}

}  // namespace vitopt::runtime::kernels
