// Token merging's inner loops, avx512 level: merge_impl.inc's rows (vectorized by the compiler at
// this level's width), merge_simd_impl.inc's metric and first maximum (avx512 vector traits).
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx512 {
namespace {
// The vector traits first: the bodies use them.
// clang-format off
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/merge_impl.inc"
#include "runtime/kernels/merge_simd_impl.inc"
// clang-format on
}  // namespace
}  // namespace vitopt::runtime::kernels::avx512

namespace vitopt::runtime::kernels {

void fill_merge_f32_avx512(KernelTable& t) {
  t.merge_metric = avx512::merge_metric;
  t.row_argmax = avx512::row_argmax;
  t.merge_row = avx512::merge_row;
}

}  // namespace vitopt::runtime::kernels
