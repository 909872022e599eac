// LayerNorm and elementwise GELU, avx2 level: layernorm_impl.inc with the avx2 vector traits.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx2 {
namespace {
#include "runtime/kernels/simd_avx2.inc"
#include "runtime/kernels/layernorm_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx2

namespace vitopt::runtime::kernels {

void fill_layernorm_f32_avx2(KernelTable& t) {
  t.layernorm = avx2::layernorm;
  t.gelu = avx2::gelu;
}

}  // namespace vitopt::runtime::kernels
