// The fp32 attention's key layout on AVX2 (also the avx512 level's: a copy gains nothing from
// wider vectors here): 8 x 8 blocks transposed in registers, so each of the D destination rows
// gets one 32-byte store per 8 tokens instead of 8 scalar stores to 8 different lines (the scalar
// loop cost ~7% of a batch-32 vit-fmnist-56 forward). Edges go through the reference loop.
#include <immintrin.h>

#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {

void transpose_keys_avx2(const float* k, size_t ld, int n, int head_dim, float* dst, size_t np) {
  const int n8 = n - n % 8, d8 = head_dim - head_dim % 8;
  for (int t0 = 0; t0 < n8; t0 += 8) {
    const float* kt = k + static_cast<size_t>(t0) * ld;
    for (int d0 = 0; d0 < d8; d0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(kt + static_cast<size_t>(i) * ld + d0);
      // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped.
      const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
      const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
      const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
      const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
      const __m256 c[8] = {
          _mm256_permute2f128_ps(b0, b4, 0x20), _mm256_permute2f128_ps(b1, b5, 0x20),
          _mm256_permute2f128_ps(b2, b6, 0x20), _mm256_permute2f128_ps(b3, b7, 0x20),
          _mm256_permute2f128_ps(b0, b4, 0x31), _mm256_permute2f128_ps(b1, b5, 0x31),
          _mm256_permute2f128_ps(b2, b6, 0x31), _mm256_permute2f128_ps(b3, b7, 0x31)};
      for (int j = 0; j < 8; ++j)
        _mm256_storeu_ps(dst + static_cast<size_t>(d0 + j) * np + static_cast<size_t>(t0), c[j]);
    }
    if (d8 < head_dim)  // the last head_dim % 8 features of these 8 tokens
      for (int i = 0; i < 8; ++i)
        for (int d = d8; d < head_dim; ++d)
          dst[static_cast<size_t>(d) * np + static_cast<size_t>(t0 + i)] =
              kt[static_cast<size_t>(i) * ld + static_cast<size_t>(d)];
  }
  if (n8 < n)
    transpose_keys_ref(k + static_cast<size_t>(n8) * ld, ld, n - n8, head_dim, dst + n8, np);
}

}  // namespace

void fill_transpose_f32_avx2(KernelTable& t) { t.transpose_keys = transpose_keys_avx2; }

}  // namespace vitopt::runtime::kernels
