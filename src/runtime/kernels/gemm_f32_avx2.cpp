// fp32 GEMM, avx2 level: the shared packed-panel micro-kernel (gemm_f32_impl.inc) instantiated
// with the avx2 vector traits. Compiled with this level's flags only (src/runtime/CMakeLists.txt).
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx2 {
namespace {
#include "runtime/kernels/simd_avx2.inc"
#include "runtime/kernels/epilogue_impl.inc"
#include "runtime/kernels/gemm_f32_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx2

namespace vitopt::runtime::kernels {

void fill_gemm_f32_avx2(KernelTable& t) {
  t.f32_mr = avx2::S::kMr;
  t.f32_nr = avx2::kNr;
  t.packed_f32_floats = avx2::f32_packed_floats;
  t.pack_f32 = avx2::f32_pack;
  t.gemm_f32 = avx2::f32_gemm;
}

}  // namespace vitopt::runtime::kernels
