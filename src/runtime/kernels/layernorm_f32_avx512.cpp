// LayerNorm and elementwise GELU, avx512 level: layernorm_impl.inc with the avx512 vector traits.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx512 {
namespace {
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/layernorm_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx512

namespace vitopt::runtime::kernels {

void fill_layernorm_f32_avx512(KernelTable& t) {
  t.layernorm = avx512::layernorm;
  t.gelu = avx512::gelu;
}

}  // namespace vitopt::runtime::kernels
