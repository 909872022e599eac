// Integer GEMM, AVX2 level: activations as s16 (u = q + 128) times weights widened to s16 with
// vpmaddwd (pairs of k, exact: no saturation unlike vpmaddubsw), int32 accumulators in a 6 x 16
// tile, exact zero-point correction and fp32 scaling in the epilogue. Packed panels of 16
// outputs: panel p, pair g of k: 16 x 2 s16. Plus the vectorized activation quantizer.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "runtime/kernels/kernels.h"
#include "runtime/kernels/simd_avx2.h"

namespace vitopt::runtime::kernels::avx2 {
namespace {
#include "runtime/kernels/epilogue_impl.inc"

constexpr int kNr = 16, kMr = 6;

size_t packed_bytes(int n, int kp) {
  return static_cast<size_t>((n + kNr - 1) / kNr) * kNr * static_cast<size_t>(kp) * 2;
}

void pack(const int8_t* w, int n, int k, int kp, void* out) {
  auto* o = static_cast<int16_t*>(out);
  const int panels = (n + kNr - 1) / kNr, pairs = kp / 2;
  for (int p = 0; p < panels; ++p) {
    for (int g = 0; g < pairs; ++g) {
      int16_t* dst = o + (static_cast<size_t>(p) * static_cast<size_t>(pairs) + static_cast<size_t>(g)) * kNr * 2;
      for (int j = 0; j < kNr; ++j) {
        const int col = p * kNr + j;
        for (int e = 0; e < 2; ++e) {
          const int kk = 2 * g + e;
          dst[j * 2 + e] = col < n && kk < k ? w[static_cast<size_t>(col) * static_cast<size_t>(k) + static_cast<size_t>(kk)] : int16_t{0};
        }
      }
    }
  }
}

// Epilogue of one tile, out of line so that its column vectors do not crowd the k loop's 12
// accumulators out of the 16 registers (inlined, GCC 12 spilled accumulators inside the loop).
template <int MR>
__attribute__((noinline)) void tile_epilogue(const GemmQ8Args& g, int row, int n0, const __m256i* acc) {
  const auto ld = [](const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  const __m256i cs0 = ld(g.colsum + n0), cs1 = ld(g.colsum + n0 + 8);
  const __m256i zw0 = ld(g.wzp + n0), zw1 = ld(g.wzp + n0 + 8);
  const __m256 ws0 = _mm256_loadu_ps(g.wscale + n0), ws1 = _mm256_loadu_ps(g.wscale + n0 + 8);
  const int n_a = g.n - n0 < 8 ? g.n - n0 : 8;
  const int n_b = g.n - n0 - 8 < 8 ? g.n - n0 - 8 : 8;
  const __m256 bias0 = load_bias(g.ep.bias, n0, n_a);
  const __m256 bias1 = n_b > 0 ? load_bias(g.ep.bias, n0 + 8, n_b) : S::zero();
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const int i = row + r;
    const __m256i ra = _mm256_set1_epi32(g.row_a[i]), rb = _mm256_set1_epi32(g.row_b[i]);
    const __m256 rs = _mm256_set1_ps(g.row_scale[i]);
    float* cr = g.c + static_cast<size_t>(i) * static_cast<size_t>(g.ldc) + n0;
    __m256i v0 = _mm256_sub_epi32(acc[2 * r], _mm256_mullo_epi32(ra, cs0));
    v0 = _mm256_sub_epi32(v0, _mm256_mullo_epi32(rb, zw0));
    store_out(g.ep, _mm256_mul_ps(_mm256_cvtepi32_ps(v0), _mm256_mul_ps(rs, ws0)), bias0, cr, n_a);
    if (n_b > 0) {
      __m256i v1 = _mm256_sub_epi32(acc[2 * r + 1], _mm256_mullo_epi32(ra, cs1));
      v1 = _mm256_sub_epi32(v1, _mm256_mullo_epi32(rb, zw1));
      store_out(g.ep, _mm256_mul_ps(_mm256_cvtepi32_ps(v1), _mm256_mul_ps(rs, ws1)), bias1, cr + 8, n_b);
    }
  }
}

template <int MR>
inline void tile(const GemmQ8Args& g, int row, const int16_t* bp, int n0) {
  __m256i acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  const auto* a = static_cast<const int16_t*>(g.a) + static_cast<size_t>(row) * static_cast<size_t>(g.lda);
  const size_t lda = static_cast<size_t>(g.lda);
  const int16_t* const end = bp + static_cast<size_t>(g.kp / 2) * 32;
  for (; bp != end; bp += 32, a += 2) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + static_cast<size_t>(r) * lda, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, b0));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, b1));
    }
  }
  alignas(32) __m256i acc[2 * MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    acc[2 * r] = acc0[r];
    acc[2 * r + 1] = acc1[r];
  }
  tile_epilogue<MR>(g, row, n0, acc);
}

template <int MR>
inline void rows_dispatch(int rows, const GemmQ8Args& g, int row, const int16_t* bp, int n0) {
  if constexpr (MR > 0) {
    if (rows == MR) {
      tile<MR>(g, row, bp, n0);
    } else {
      rows_dispatch<MR - 1>(rows, g, row, bp, n0);
    }
  }
}

void gemm(const GemmQ8Args& g, int p0, int p1, int r0, int r1) {
  // Row blocks outside, panels inside: the quantized A block stays in L2 across panels.
  constexpr int kRowBlock = 16 * kMr;
  const auto* w = static_cast<const int16_t*>(g.w);
  const int step = row_block_rows(r1 - r0, kRowBlock, kMr);
  for (int b0 = r0; b0 < r1; b0 += step) {
    const int b1 = r1 - b0 < step ? r1 : b0 + step;
    for (int p = p0; p < p1; ++p) {
      const int16_t* bp = w + static_cast<size_t>(p) * kNr * static_cast<size_t>(g.kp);
      for (int i = b0; i < b1; i += kMr) rows_dispatch<kMr>(b1 - i < kMr ? b1 - i : kMr, g, i, bp, p * kNr);
    }
  }
}

void quantize_rows(const QuantRowsArgs& a, int r0, int r1) {
  const __m256 lo = _mm256_set1_ps(-1073741824.0f), hi = _mm256_set1_ps(1073741824.0f);
  const __m256i qmin = _mm256_set1_epi32(a.q.qmin), qmax = _mm256_set1_epi32(a.q.qmax);
  const __m256i off = _mm256_set1_epi32(128);
  for (int i = r0; i < r1; ++i) {
    const float* x = a.x + static_cast<size_t>(i) * static_cast<size_t>(a.ldx);
    float scale = a.q.scale;
    int zp = a.q.zero_point;
    if (a.q.dynamic) {
      __m256 mn = _mm256_set1_ps(x[0]), mx = mn;
      for (int k = 0; k < a.k; k += 8) {
        const int n = a.k - k < 8 ? a.k - k : 8;
        // Masked-off lanes repeat x[0] so they never change the result.
        const __m256 v = _mm256_blendv_ps(_mm256_set1_ps(x[0]), S::loadn(x + k, n),
                                          _mm256_castsi256_ps(S::mask(n)));
        mn = _mm256_min_ps(mn, v);
        mx = _mm256_max_ps(mx, v);
      }
      dynamic_params(S::reduce_min(mn), S::reduce_max(mx), a.q, &scale, &zp);
    }
    const __m256 sv = _mm256_set1_ps(scale);
    const __m256i zv = _mm256_set1_epi32(zp);
    auto* o = static_cast<int16_t*>(a.out) + static_cast<size_t>(i) * static_cast<size_t>(a.ldo);
    __m256i sum = _mm256_setzero_si256();
    for (int k = 0; k < a.k; k += 8) {
      const int n = a.k - k < 8 ? a.k - k : 8;
      __m256 v = _mm256_div_ps(S::loadn(x + k, n), sv);
      v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max(NaN, lo) = lo, as in the ref
      __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), zv);
      q = _mm256_min_epi32(_mm256_max_epi32(q, qmin), qmax);
      q = _mm256_and_si256(q, S::mask(n));
      sum = _mm256_add_epi32(sum, q);
      const __m256i u = _mm256_add_epi32(q, off);
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), u);
      for (int e = 0; e < n; ++e) o[k + e] = static_cast<int16_t>(tmp[e]);
    }
    for (int k = a.k; k < a.kp; ++k) o[k] = 0;
    alignas(32) int32_t parts[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(parts), sum);
    int32_t total = 0;
    for (int e = 0; e < 8; ++e) total += parts[e];
    a.row_a[i] = 128 + zp;
    a.row_b[i] = total - a.k * zp;
    a.row_scale[i] = scale;
  }
}

}  // namespace
}  // namespace vitopt::runtime::kernels::avx2

namespace vitopt::runtime::kernels {

void fill_gemm_q8_avx2(KernelTable& t) {
  t.q8_mr = avx2::kMr;
  t.q8_nr = avx2::kNr;
  t.q8_kgroup = 4;
  t.q8_act_bytes = 2;
  t.packed_q8_bytes = avx2::packed_bytes;
  t.pack_q8 = avx2::pack;
  t.gemm_q8 = avx2::gemm;
  t.quantize_rows = avx2::quantize_rows;
}

}  // namespace vitopt::runtime::kernels
