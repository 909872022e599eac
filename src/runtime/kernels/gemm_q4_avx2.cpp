// Integer GEMM, nibble-packed int4 weights, avx2 level (no VNNI): u8 activations times the
// unsigned nibbles c = q + 8 (0..15) unpacked in registers (and / shift), vpmaddubsw then
// vpmaddwd by 1 into int32. Exact: a vpmaddubsw pair sum is at most 2 * 255 * 15 = 7650, far
// from its int16 saturation. 6 x 16 int32 tile; the two constants come from memory operands.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {
#include "runtime/kernels/simd_avx2.inc"
#include "runtime/kernels/epilogue_impl.inc"
#include "runtime/kernels/gemm_int_impl.inc"

struct Q4Nibbles {
  static constexpr int kK = 4, kStepBytes = kIntNr * 4 / 2, kMr = 6;
  using Act = uint8_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_quads_nibbles<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m256i& b0, __m256i& b1) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i low = _mm256_set1_epi8(0x0f);
    b0 = _mm256_and_si256(v, low);
    b1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  }
  static __m256i dot(__m256i acc, __m256i a, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
  }
};

}  // namespace

void fill_gemm_q4_avx2(GemmIntKernels& k) {
  int_fill<Q4Nibbles>(k, Isa::kAvx2, 4, 8, quantize_rows_u8_avx2);
}

}  // namespace vitopt::runtime::kernels
