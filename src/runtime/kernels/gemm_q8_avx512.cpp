// Integer GEMM, AVX-512 VNNI level: u8 activations x s8 weights with vpdpbusd (64 MACs per
// instruction), int32 accumulators in a 12 x 32 register tile, the exact zero-point correction and
// fp32 scaling fused into the epilogue. Weights are packed at load into panels of 32 outputs:
//   panel p, group g of 4 k: 32 x 4 bytes, output j's 4 consecutive k values together.
// Also the vectorized activation quantizer (division + round-half-even conversion, like the ref).
#include <cmath>
#include <cstddef>
#include <cstring>

#include "runtime/kernels/kernels.h"
#include "runtime/kernels/simd_avx512.h"

namespace vitopt::runtime::kernels::avx512 {
namespace {
#include "runtime/kernels/epilogue_impl.inc"

constexpr int kNr = 32, kMr = 12;

size_t packed_bytes(int n, int kp) {
  return static_cast<size_t>((n + kNr - 1) / kNr) * kNr * static_cast<size_t>(kp);
}

void pack(const int8_t* w, int n, int k, int kp, void* out) {
  auto* o = static_cast<int8_t*>(out);
  const int panels = (n + kNr - 1) / kNr, groups = kp / 4;
  for (int p = 0; p < panels; ++p) {
    for (int g = 0; g < groups; ++g) {
      int8_t* dst = o + (static_cast<size_t>(p) * static_cast<size_t>(groups) + static_cast<size_t>(g)) * kNr * 4;
      for (int j = 0; j < kNr; ++j) {
        const int col = p * kNr + j;
        for (int e = 0; e < 4; ++e) {
          const int kk = 4 * g + e;
          dst[j * 4 + e] = col < n && kk < k ? w[static_cast<size_t>(col) * static_cast<size_t>(k) + static_cast<size_t>(kk)] : int8_t{0};
        }
      }
    }
  }
}

// Epilogue of one tile, kept out of line: inlined, its eight column vectors pushed GCC 12 into
// spilling and shuffling the 24 accumulators inside the k loop (62 stack accesses and 60 register
// moves per iteration; the int8 GEMM ran at ~60% of the vpdpbusd rate).
template <int MR>
__attribute__((noinline)) void tile_epilogue(const GemmQ8Args& g, int row, int n0, const __m512i* acc) {
  const __m512i cs0 = _mm512_loadu_si512(g.colsum + n0), cs1 = _mm512_loadu_si512(g.colsum + n0 + 16);
  const __m512i zw0 = _mm512_loadu_si512(g.wzp + n0), zw1 = _mm512_loadu_si512(g.wzp + n0 + 16);
  const __m512 ws0 = _mm512_loadu_ps(g.wscale + n0), ws1 = _mm512_loadu_ps(g.wscale + n0 + 16);
  const int n_a = g.n - n0 < 16 ? g.n - n0 : 16;
  const int n_b = g.n - n0 - 16 < 16 ? g.n - n0 - 16 : 16;
  const __m512 bias0 = load_bias(g.ep.bias, n0, n_a);
  const __m512 bias1 = n_b > 0 ? load_bias(g.ep.bias, n0 + 16, n_b) : S::zero();
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const int i = row + r;
    const __m512i ra = _mm512_set1_epi32(g.row_a[i]), rb = _mm512_set1_epi32(g.row_b[i]);
    const __m512 rs = _mm512_set1_ps(g.row_scale[i]);
    float* cr = g.c + static_cast<size_t>(i) * static_cast<size_t>(g.ldc) + n0;
    __m512i v0 = _mm512_sub_epi32(acc[2 * r], _mm512_mullo_epi32(ra, cs0));
    v0 = _mm512_sub_epi32(v0, _mm512_mullo_epi32(rb, zw0));
    store_out(g.ep, _mm512_mul_ps(_mm512_cvtepi32_ps(v0), _mm512_mul_ps(rs, ws0)), bias0, cr, n_a);
    if (n_b > 0) {
      __m512i v1 = _mm512_sub_epi32(acc[2 * r + 1], _mm512_mullo_epi32(ra, cs1));
      v1 = _mm512_sub_epi32(v1, _mm512_mullo_epi32(rb, zw1));
      store_out(g.ep, _mm512_mul_ps(_mm512_cvtepi32_ps(v1), _mm512_mul_ps(rs, ws1)), bias1, cr + 16, n_b);
    }
  }
}

template <int MR>
inline void tile(const GemmQ8Args& g, int row, const int8_t* bp, int n0) {
  __m512i acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  const auto* a = static_cast<const uint8_t*>(g.a) + static_cast<size_t>(row) * static_cast<size_t>(g.lda);
  const size_t lda = static_cast<size_t>(g.lda);
  const int8_t* const end = bp + static_cast<size_t>(g.kp / 4) * 128;
  for (; bp != end; bp += 128, a += 4) {
    const __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 64);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + static_cast<size_t>(r) * lda, 4);
      const __m512i av = _mm512_set1_epi32(quad);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
    }
  }
  alignas(64) __m512i acc[2 * MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc[2 * r] = acc0[r];
    acc[2 * r + 1] = acc1[r];
  }
  tile_epilogue<MR>(g, row, n0, acc);
}

template <int MR>
inline void rows_dispatch(int rows, const GemmQ8Args& g, int row, const int8_t* bp, int n0) {
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
  const auto* w = static_cast<const int8_t*>(g.w);
  const int step = row_block_rows(r1 - r0, kRowBlock, kMr);
  for (int b0 = r0; b0 < r1; b0 += step) {
    const int b1 = r1 - b0 < step ? r1 : b0 + step;
    for (int p = p0; p < p1; ++p) {
      const int8_t* bp = w + static_cast<size_t>(p) * kNr * static_cast<size_t>(g.kp);
      for (int i = b0; i < b1; i += kMr) rows_dispatch<kMr>(b1 - i < kMr ? b1 - i : kMr, g, i, bp, p * kNr);
    }
  }
}

void quantize_rows(const QuantRowsArgs& a, int r0, int r1) {
  const __m512 lo = _mm512_set1_ps(-1073741824.0f), hi = _mm512_set1_ps(1073741824.0f);
  const __m512i qmin = _mm512_set1_epi32(a.q.qmin), qmax = _mm512_set1_epi32(a.q.qmax);
  const __m512i off = _mm512_set1_epi32(128);
  for (int i = r0; i < r1; ++i) {
    const float* x = a.x + static_cast<size_t>(i) * static_cast<size_t>(a.ldx);
    float scale = a.q.scale;
    int zp = a.q.zero_point;
    if (a.q.dynamic) {
      __m512 mn = _mm512_set1_ps(x[0]), mx = mn;
      int k = 0;
      for (; k + 16 <= a.k; k += 16) {
        const __m512 v = _mm512_loadu_ps(x + k);
        mn = _mm512_min_ps(mn, v);
        mx = _mm512_max_ps(mx, v);
      }
      if (k < a.k) {
        const __mmask16 m = S::mask(a.k - k);
        mn = _mm512_mask_min_ps(mn, m, mn, _mm512_maskz_loadu_ps(m, x + k));
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + k));
      }
      dynamic_params(_mm512_reduce_min_ps(mn), _mm512_reduce_max_ps(mx), a.q, &scale, &zp);
    }
    const __m512 sv = _mm512_set1_ps(scale);
    const __m512i zv = _mm512_set1_epi32(zp);
    auto* o = static_cast<uint8_t*>(a.out) + static_cast<size_t>(i) * static_cast<size_t>(a.ldo);
    __m512i sum = _mm512_setzero_si512();
    for (int k = 0; k < a.k; k += 16) {
      const int n = a.k - k < 16 ? a.k - k : 16;
      const __mmask16 m = S::mask(n);
      __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + k), sv);
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);  // max(NaN, lo) = lo, as in the ref
      __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zv);
      q = _mm512_min_epi32(_mm512_max_epi32(q, qmin), qmax);
      sum = _mm512_add_epi32(sum, _mm512_maskz_mov_epi32(m, q));
      _mm512_mask_cvtepi32_storeu_epi8(o + k, m, _mm512_add_epi32(q, off));
    }
    for (int k = a.k; k < a.kp; ++k) o[k] = 0;
    a.row_a[i] = 128 + zp;
    a.row_b[i] = _mm512_reduce_add_epi32(sum) - a.k * zp;
    a.row_scale[i] = scale;
  }
}

}  // namespace
}  // namespace vitopt::runtime::kernels::avx512

namespace vitopt::runtime::kernels {

void fill_gemm_q8_avx512(KernelTable& t) {
  t.q8_mr = avx512::kMr;
  t.q8_nr = avx512::kNr;
  t.q8_kgroup = 4;
  t.q8_act_bytes = 1;
  t.packed_q8_bytes = avx512::packed_bytes;
  t.pack_q8 = avx512::pack;
  t.gemm_q8 = avx512::gemm;
  t.quantize_rows = avx512::quantize_rows;
}

}  // namespace vitopt::runtime::kernels
