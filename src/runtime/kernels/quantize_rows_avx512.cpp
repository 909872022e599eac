// Activation quantizers, avx512 level: quantize_impl.inc with the avx512 vector traits, as u8 codes
// (for vpdpbusd / vpmaddubsw kernels) and s16 codes (for vpmaddwd kernels).
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "runtime/kernels/kernels.h"

namespace vitopt::runtime::kernels {
namespace {
#include "runtime/kernels/simd_avx512.inc"
#include "runtime/kernels/quantize_impl.inc"
}  // namespace

void quantize_rows_u8_avx512(const QuantRowsArgs& a, int row0, int row1) {
  quantize_rows_to<uint8_t>(a, row0, row1);
}

void quantize_rows_s16_avx512(const QuantRowsArgs& a, int row0, int row1) {
  quantize_rows_to<int16_t>(a, row0, row1);
}

}  // namespace vitopt::runtime::kernels
