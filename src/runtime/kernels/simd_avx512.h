// AVX-512 vector traits for the shared kernel templates (*.inc), in their own namespace so the
// templates instantiated with AVX-512 flags never merge with the AVX2 ones at link time.
// Only *_avx512.cpp includes this (compiled with -mavx512f/bw/vl/dq/vnni).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace vitopt::runtime::kernels::avx512 {

struct S {
  static constexpr int W = 16;    // floats per vector
  static constexpr int kMr = 12;  // fp32 GEMM rows per tile: 24 accumulators of 32 registers
  static constexpr int kAttnVecs = 2;  // attention vectors per FMA step (16 + 16 accumulators)
  using F = __m512;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static F loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void storen(float* p, F v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static F keepn(F v, int n) { return _mm512_maskz_mov_ps(mask(n), v); }
  static F keepn_or(F v, int n, float fill) { return _mm512_mask_mov_ps(set1(fill), mask(n), v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static float reduce_min(F v) { return _mm512_reduce_min_ps(v); }

  static F rne(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // a <= b ? x : 0 per lane.
  static F select_le(F a, F b, F x) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), x); }
  // rne(-log2 p) for p >= 0 (denormals included; p = 0 gives +inf), exactly: with p = m 2^e,
  // m in [1, 2), the result is -e - (m > sqrt 2). sqrt 2 is irrational, so there is no tie.
  static F log2_code(F p) {
    const F e = _mm512_getexp_ps(p);
    const F m = _mm512_getmant_ps(p, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    const F up = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, set1(1.41421354f), _CMP_GT_OQ), set1(1.0f));
    return sub(sub(zero(), e), up);
  }
  // 2^-c for integer-valued c >= 0 (+inf gives 0), rounded like exp2f below the normal range.
  static F exp2_neg(F c) { return _mm512_scalef_ps(set1(1.0f), sub(zero(), c)); }

  // exp(x), ~1 ulp on [-87, 88]; smaller inputs give ~1e-38 (callers mask what must be 0).
  static F exp(F x) {
    x = min(max(x, set1(-87.33654f)), set1(88.0f));
    const F n = _mm512_roundscale_ps(mul(x, set1(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    F p = set1(1.0f / 720);
    p = fmadd(p, r, set1(1.0f / 120));
    p = fmadd(p, r, set1(1.0f / 24));
    p = fmadd(p, r, set1(1.0f / 6));
    p = fmadd(p, r, set1(0.5f));
    p = fmadd(p, r, set1(1.0f));
    p = fmadd(p, r, set1(1.0f));
    return _mm512_scalef_ps(p, n);
  }
  // Exact-erf GELU: 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz-Stegun 7.1.26 (|err| < 1.5e-7).
  static F gelu(F x) {
    const F z = mul(x, set1(0.70710678118654752f));
    const F a = _mm512_abs_ps(z);
    // t = 1 / (1 + 0.3275911 a): rcp14 plus one Newton step (~1 ulp) instead of a division,
    // which would cost more than the rest of the epilogue together at K = 128.
    const F den = fmadd(a, set1(0.3275911f), set1(1.0f));
    F t = _mm512_rcp14_ps(den);
    t = mul(t, _mm512_fnmadd_ps(den, t, set1(2.0f)));
    F p = set1(1.061405429f);
    p = fmadd(p, t, set1(-1.453152027f));
    p = fmadd(p, t, set1(1.421413741f));
    p = fmadd(p, t, set1(-0.284496736f));
    p = fmadd(p, t, set1(0.254829592f));
    p = mul(p, t);
    const F e = exp(mul(sub(zero(), a), a));
    F y = _mm512_fnmadd_ps(p, e, set1(1.0f));  // erf(|z|)
    y = _mm512_xor_ps(y, _mm512_and_ps(z, set1(-0.0f)));
    return mul(mul(set1(0.5f), x), add(set1(1.0f), y));
  }
};

}  // namespace vitopt::runtime::kernels::avx512
