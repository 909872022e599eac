// Token merging's inner loops, reference level (baseline x86-64 flags): the metric and the first
// maximum (the spec merge_simd_impl.inc reproduces bit for bit) and merge_impl.inc's rows.
#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::ref_merge {
namespace {
#include "runtime/kernels/merge_impl.inc"

// Token t's keys (H, D) at keys + t * ldk averaged over the heads and L2-normalised into
// metric + t * head_dim. Sum over heads, / H (torch's mean), / the L2 norm; the squares go to 8
// partial sums (lane j takes d = j mod 8, the tail joins lane 0) combined pairwise: torch's order
// for the norm is its own too, and the metric only ranks similarities.
void merge_metric(const float* keys, int ldk, int heads, int head_dim, int t0, int t1,
                  float* metric) {
  const size_t uD = static_cast<size_t>(head_dim);
  const float hf = static_cast<float>(heads);
  const int full = head_dim - head_dim % 8;
  for (int t = t0; t < t1; ++t) {
    float* __restrict u = metric + static_cast<size_t>(t) * uD;
    const float* __restrict k = keys + static_cast<size_t>(t) * static_cast<size_t>(ldk);
    for (int d = 0; d < head_dim; ++d) u[d] = k[d];
    for (int h = 1; h < heads; ++h) {
      const float* __restrict kh = k + static_cast<size_t>(h) * uD;
      for (int d = 0; d < head_dim; ++d) u[d] += kh[d];
    }
    for (int d = 0; d < head_dim; ++d) u[d] /= hf;
    float part[8] = {};
    for (int d = 0; d < full; d += 8)
      for (int j = 0; j < 8; ++j) part[j] += u[d + j] * u[d + j];
    for (int d = full; d < head_dim; ++d) part[0] += u[d] * u[d];
    const float norm = std::sqrt(((part[0] + part[1]) + (part[2] + part[3])) +
                                 ((part[4] + part[5]) + (part[6] + part[7])));
    for (int d = 0; d < head_dim; ++d) u[d] /= norm;
  }
}

// The first j in [j0, j1) holding the largest x[j] (NaN never wins), its value in *best; j0 and
// -inf when no value is above -inf: the scan the SIMD levels' lanes (merge_simd_impl.inc)
// reproduce.
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
