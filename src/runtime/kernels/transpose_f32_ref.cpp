// The fp32 attention's key layout, scalar reference: one head's keys of n tokens (rows of stride
// ld) into (D, np) columns, dst[d * np + t] = k_t[d].
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {

void transpose_keys_ref(const float* k, size_t ld, int n, int head_dim, float* dst, size_t np) {
  const size_t D = static_cast<size_t>(head_dim);
  for (int t = 0; t < n; ++t, k += ld, ++dst)
    for (size_t d = 0; d < D; ++d) dst[d * np] = k[d];
}

void fill_transpose_f32_ref(KernelTable& t) { t.transpose_keys = transpose_keys_ref; }

}  // namespace vitopt::runtime::kernels
