// Fused attention (online softmax over key tiles), avx2 level: attention_impl.inc instantiated
// with the avx2 vector traits.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx2 {
namespace {
#include "runtime/kernels/simd_avx2.inc"
#include "runtime/kernels/attention_impl.inc"
#include "runtime/kernels/attention_q_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx2

namespace vitopt::runtime::kernels {

void fill_attention_f32_avx2(KernelTable& t) {
  t.attention = avx2::attention;
  t.attention_q = avx2::attention_q;
}

}  // namespace vitopt::runtime::kernels
