// Token merging's inner loops, reference level (baseline x86-64 flags): merge_impl.inc.
#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::ref_merge {
namespace {
#include "runtime/kernels/merge_impl.inc"

// The first j in [j0, j1) holding the largest x[j] (NaN never wins), its value in *best; j0 and
// -inf when no value is above -inf: the scan the SIMD levels' lanes (argmax_impl.inc) reproduce.
int row_argmax(const float* x, int j0, int j1, float* best) {
  float m = -INFINITY;
  int arg = j0;
  for (int j = j0; j < j1; ++j) {
    if (x[j] > m) {
      m = x[j];
      arg = j;
    }
  }
  *best = m;
  return arg;
}
}  // namespace
}  // namespace vitopt::runtime::kernels::ref_merge

namespace vitopt::runtime::kernels {

void fill_merge_f32_ref(KernelTable& t) {
  t.merge_metric = ref_merge::merge_metric;
  t.row_argmax = ref_merge::row_argmax;
  t.merge_row = ref_merge::merge_row;
}

}  // namespace vitopt::runtime::kernels
