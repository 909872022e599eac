// Token merging's inner loops, avx2 level: merge_impl.inc's rows (vectorized by the compiler at
// this level's width), merge_simd_impl.inc's metric and first maximum (avx2 vector traits).
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx2 {
namespace {
// The vector traits first: the bodies use them.
// clang-format off
#include "runtime/kernels/simd_avx2.inc"
#include "runtime/kernels/merge_impl.inc"
#include "runtime/kernels/merge_simd_impl.inc"
// clang-format on
}  // namespace
}  // namespace vitopt::runtime::kernels::avx2

namespace vitopt::runtime::kernels {

void fill_merge_f32_avx2(KernelTable& t) {
  t.merge_metric = avx2::merge_metric;
  t.row_argmax = avx2::row_argmax;
  t.merge_row = avx2::merge_row;
}

}  // namespace vitopt::runtime::kernels
