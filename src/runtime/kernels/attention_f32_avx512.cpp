// Fused attention (online softmax over key tiles), avx512 level: attention_impl.inc instantiated
// with the avx512 vector traits.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels::avx512 {
namespace {
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/attention_impl.inc"
#include "runtime/kernels/attention_q_impl.inc"
}  // namespace
}  // namespace vitopt::runtime::kernels::avx512

namespace vitopt::runtime::kernels {

void fill_attention_f32_avx512(KernelTable& t) {
  t.attention = avx512::attention;
  t.attention_q = avx512::attention_q;
}

}  // namespace vitopt::runtime::kernels
