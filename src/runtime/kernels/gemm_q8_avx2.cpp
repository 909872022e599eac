// Integer GEMM, int8 weights, avx2 level (AVX2 without VNNI: Zen 3, Haswell): s16 activations
// (u = q + 128) times weights widened to s16 at pack time, vpmaddwd over pairs of k. Exact:
// |u w + u' w'| <= 2 * 255 * 128 fits the int32 lanes, whereas vpmaddubsw (u8 x s8) would
// saturate its int16 pair sums. 6 x 16 int32 tile (12 accumulators of 16 ymm registers).
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

struct Q8PairsS16 {
  static constexpr int kK = 2, kStepBytes = kIntNr * 2 * 2, kMr = 6;
  using Act = int16_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_pairs_s16<kIntNr * 2>(vals, dst); }
  static void weights(const uint8_t* p, __m256i& b0, __m256i& b1) {
    b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  }
  static __m256i dot(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
};

}  // namespace

void fill_gemm_q8_avx2(GemmIntKernels& k) {
  int_fill<Q8PairsS16>(k, Isa::kAvx2, 8, 0, quantize_rows_s16_avx2);
}

}  // namespace vitopt::runtime::kernels
