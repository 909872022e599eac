// fp32 GEMM, avx512 level: the shared packed-panel micro-kernel (gemm_f32_impl.inc) instantiated
// with the avx512 vector traits. Compiled with this level's flags only (src/runtime/CMakeLists.txt).
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx512 {
namespace {
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/epilogue_impl.inc"
#include "runtime/kernels/gemm_f32_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx512

namespace vitopt::runtime::kernels {

void fill_gemm_f32_avx512(KernelTable& t) {
  t.f32_mr = avx512::S::kMr;
  t.f32_nr = avx512::kNr;
  t.packed_f32_floats = avx512::f32_packed_floats;
  t.pack_f32 = avx512::f32_pack;
  t.gemm_f32 = avx512::f32_gemm;
}

}  // namespace vitopt::runtime::kernels
