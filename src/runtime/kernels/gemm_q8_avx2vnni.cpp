// Integer GEMM, int8 weights, avx2vnni level (AVX-VNNI without AVX-512: Alder Lake class): u8
// activations times s8 weights with the VEX-encoded vpdpbusd on ymm (32 MACs and the accumulate
// in one instruction, exact in int32). Panels of 16 outputs, 4 consecutive k per output; 6 x 16
// int32 tile.
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

struct Q8QuadsVnni {
  static constexpr int kK = 4, kStepBytes = kIntNr * 4, kMr = 6;
  using Act = uint8_t;
  static void store_step(const int8_t* vals, uint8_t* dst) { store_codes_s8<kStepBytes>(vals, dst); }
  static void weights(const uint8_t* p, __m256i& b0, __m256i& b1) {
    b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  }
  static __m256i dot(__m256i acc, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
};

}  // namespace

void fill_gemm_q8_avx2vnni(GemmIntKernels& k) {
  int_fill<Q8QuadsVnni>(k, Isa::kAvx2Vnni, 8, 0, quantize_rows_u8_avx2);
}

}  // namespace vitopt::runtime::kernels
