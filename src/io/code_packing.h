// Storage of quantized weights in a model file (docs/model-format.md, "Quantized files"), on plain
// arrays: the packing of integer codes (<= 4 bits: U8 nibble-packed (out, ceil(in/2)) holding
// q - qmin, low nibble first; 5..8 bits: I8 (out, in); 9..16 bits: I16 (out, in)) and a quantized
// weight with its <name>.scale / <name>.zero_point siblings, written and read back with every
// check. The one implementation: the LibTorch side converts tensors to these arrays and back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/quant_spec.h"
#include "io/safetensors.h"

namespace vitopt::io {

// The dtype and stored shape of b-bit codes of an (rows, cols) weight.
DType code_dtype(int bits);
std::vector<int64_t> packed_shape(int64_t rows, int64_t cols, int bits);

struct PackedCodes {
  DType dtype = DType::I8;
  std::vector<int64_t> shape;  // packed_shape(rows, cols, bits)
  std::vector<uint8_t> bytes;  // little-endian
};

// codes: (rows, cols) row-major, each in quant_range(bits, symmetric); a code outside it is a
// writer bug (InternalError).
PackedCodes pack_codes(const int16_t* codes, int64_t rows, int64_t cols, int bits, bool symmetric);

// The inverse: stored bytes of dtype/shape -> (rows, cols) codes. InputError naming `source` when
// the dtype or shape is not the one `bits` implies, a code lies outside the range, or a pad
// nibble (odd cols, <= 4 bits) is not 0.
std::vector<int16_t> unpack_codes(const uint8_t* data, DType dtype,
                                  const std::vector<int64_t>& shape, int64_t rows, int64_t cols,
                                  int bits, bool symmetric, const std::string& source);

// One quantized weight as plain arrays: w[o][i] = scale[o'] * (codes[o][i] - zero_point[o']),
// o' = o per channel, 0 per tensor.
struct QuantizedWeightData {
  WeightQuant spec;
  int64_t rows = 0, cols = 0;
  std::vector<int16_t> codes;       // (rows, cols)
  std::vector<float> scale;         // (rows) per channel or (1)
  std::vector<int32_t> zero_point;  // same size as scale; all 0 when symmetric
  float scale_of(int64_t row) const { return scale[spec.per_channel ? size_t(row) : 0]; }
  int32_t zero_of(int64_t row) const { return zero_point[spec.per_channel ? size_t(row) : 0]; }
};

// Adds <name> (packed codes), <name>.scale (F32) and, when asymmetric, <name>.zero_point (I32).
void add_quantized_weight(SafeTensorsWriter& writer, const std::string& name,
                          const QuantizedWeightData& w);

// Reads and checks <name> and its siblings for an (rows, cols) weight quantized as `spec`: dtype
// and shape of every tensor, codes in range, pad nibbles 0, scales finite and > 0, zero points in
// range, a zero_point tensor exactly when asymmetric. Errors name the file and the tensor.
QuantizedWeightData read_quantized_weight(const SafeTensorsFile& file, const std::string& name,
                                          const WeightQuant& spec, int64_t rows, int64_t cols);

}  // namespace vitopt::io
