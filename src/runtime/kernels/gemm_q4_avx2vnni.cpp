// Integer GEMM, nibble-packed int4 weights, avx2vnni level: the nibbles c = q + 8 unpacked in
// registers (and / shift) feed the VEX vpdpbusd on ymm as its signed operand (0..15); u8
// activations. 6 x 16 int32 tile.
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

struct Q4NibblesVnni {
  static constexpr int kK = 4, kStepBytes = kIntNr * 4 / 2, kMr = 6;
  using Act = uint8_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_quads_nibbles<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m256i& b0, __m256i& b1) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i low = _mm256_set1_epi8(0x0f);
    b0 = _mm256_and_si256(v, low);
    b1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  }
  static __m256i dot(__m256i acc, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
};

}  // namespace

void fill_gemm_q4_avx2vnni(GemmIntKernels& k) {
  int_fill<Q4NibblesVnni>(k, Isa::kAvx2Vnni, 4, 8, quantize_rows_u8_avx2);
}

}  // namespace vitopt::runtime::kernels
