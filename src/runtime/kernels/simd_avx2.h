// AVX2+FMA vector traits for the shared kernel templates (*.inc), in their own namespace so the
// AVX2 instantiations never merge with the AVX-512 ones. Only *_avx2.cpp includes this.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace vitopt::runtime::kernels::avx2 {

struct S {
  static constexpr int W = 8;    // floats per vector
  static constexpr int kMr = 6;  // fp32 GEMM rows per tile: 12 accumulators of 16 registers
  static constexpr int kAttnVecs = 1;  // attention vectors per FMA step (8 accumulators of 16 registers)
  using F = __m256;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) {
    alignas(32) static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                 0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + 8 - n));
  }
  static F loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void storen(float* p, F v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static F keepn(F v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(mask(n))); }
  static F keepn_or(F v, int n, float fill) { return _mm256_blendv_ps(set1(fill), v, _mm256_castsi256_ps(mask(n))); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static __m128 fold(F v) { return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); }
  static float reduce_add(F v) {
    __m128 s = fold(v);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(F v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_min(F v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static F rne(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // a <= b ? x : 0 per lane.
  static F select_le(F a, F b, F x) { return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_LE_OQ), x); }
  // rne(-log2 p) for p >= 0, exactly: with p = m 2^e, m in [1, 2), the result is
  // -e - (m > sqrt 2) (no tie: sqrt 2 is irrational). Denormals (and 0) are scaled by 2^24 first;
  // p = 0 gives 151, whose 2^-c is 0.
  static F log2_code(F p) {
    const F tiny = _mm256_cmp_ps(p, set1(1.17549435e-38f), _CMP_LT_OQ);
    const __m256i bits = _mm256_castps_si256(_mm256_blendv_ps(p, mul(p, set1(16777216.0f)), tiny));
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    e = _mm256_sub_epi32(e, _mm256_and_si256(_mm256_castps_si256(tiny), _mm256_set1_epi32(24)));
    const __m256i mant = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff));
    const __m256i up = _mm256_cmpgt_epi32(mant, _mm256_set1_epi32(0x3504f3));  // -1 when m > sqrt 2
    return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), e), up));
  }
  // 2^-c for integer-valued c in [0, 151], rounded like exp2f below the normal range: the
  // exponent is built for 2^(64-c) (always normal) and scaled by 2^-64.
  static F exp2_neg(F c) {
    const __m256i ci = _mm256_cvtps_epi32(min(c, set1(190.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(127 + 64), ci), 23);
    return mul(_mm256_castsi256_ps(bits), set1(5.42101086e-20f));  // 2^-64
  }

  // exp(x), ~1 ulp on [-87, 88]; smaller inputs give ~1e-38 (callers mask what must be 0).
  static F exp(F x) {
    x = min(max(x, set1(-87.33654f)), set1(88.0f));
    const F n = _mm256_round_ps(mul(x, set1(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm256_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    F p = set1(1.0f / 720);
    p = fmadd(p, r, set1(1.0f / 120));
    p = fmadd(p, r, set1(1.0f / 24));
    p = fmadd(p, r, set1(1.0f / 6));
    p = fmadd(p, r, set1(0.5f));
    p = fmadd(p, r, set1(1.0f));
    p = fmadd(p, r, set1(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return mul(p, _mm256_castsi256_ps(e));
  }
  // Exact-erf GELU: 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz-Stegun 7.1.26 (|err| < 1.5e-7).
  static F gelu(F x) {
    const F z = mul(x, set1(0.70710678118654752f));
    const F sign = _mm256_and_ps(z, set1(-0.0f));
    const F a = _mm256_xor_ps(z, sign);
    // t = 1 / (1 + 0.3275911 a): rcp plus one Newton step (~2^-22) instead of a division.
    const F den = fmadd(a, set1(0.3275911f), set1(1.0f));
    F t = _mm256_rcp_ps(den);
    t = mul(t, _mm256_fnmadd_ps(den, t, set1(2.0f)));
    F p = set1(1.061405429f);
    p = fmadd(p, t, set1(-1.453152027f));
    p = fmadd(p, t, set1(1.421413741f));
    p = fmadd(p, t, set1(-0.284496736f));
    p = fmadd(p, t, set1(0.254829592f));
    p = mul(p, t);
    const F e = exp(mul(sub(zero(), a), a));
    F y = _mm256_fnmadd_ps(p, e, set1(1.0f));  // erf(|z|)
    y = _mm256_xor_ps(y, sign);
    return mul(mul(set1(0.5f), x), add(set1(1.0f), y));
  }
};

}  // namespace vitopt::runtime::kernels::avx2
