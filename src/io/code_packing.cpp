// Code packing and quantized-weight tensors (see code_packing.h). Bit-exact inverse pair; every
// byte read from a file is checked before it is used.
#include "io/code_packing.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace vitopt::io {
namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

size_t count(int64_t rows, int64_t cols) { return static_cast<size_t>(rows) * static_cast<size_t>(cols); }

}  // namespace

DType code_dtype(int bits) { return bits <= 4 ? DType::U8 : bits <= 8 ? DType::I8 : DType::I16; }

std::vector<int64_t> packed_shape(int64_t rows, int64_t cols, int bits) {
  return {rows, bits <= 4 ? (cols + 1) / 2 : cols};
}

PackedCodes pack_codes(const int16_t* codes, int64_t rows, int64_t cols, int bits, bool symmetric) {
  const QRange r = quant_range(bits, symmetric);
  const size_t n = count(rows, cols);
  for (size_t i = 0; i < n; ++i) {
    if (codes[i] < r.qmin || codes[i] > r.qmax)
      core::throw_internal("pack_codes: code {} at {} outside [{}, {}]", codes[i], i, r.qmin, r.qmax);
  }
  PackedCodes p;
  p.dtype = code_dtype(bits);
  p.shape = packed_shape(rows, cols, bits);
  if (p.dtype == DType::U8) {
    const size_t pc = static_cast<size_t>(p.shape[1]), uc = static_cast<size_t>(cols);
    p.bytes.assign(count(rows, p.shape[1]), 0);  // pad nibbles stay 0
    for (size_t o = 0; o < static_cast<size_t>(rows); ++o) {
      for (size_t i = 0; i < uc; ++i) {
        const auto nibble = static_cast<uint8_t>(codes[o * uc + i] - r.qmin);  // 0..15
        p.bytes[o * pc + i / 2] |= static_cast<uint8_t>(i % 2 == 0 ? nibble : nibble << 4);
      }
    }
  } else if (p.dtype == DType::I8) {
    p.bytes.resize(n);
    for (size_t i = 0; i < n; ++i) p.bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(codes[i]));
  } else {
    p.bytes.resize(2 * n);
    for (size_t i = 0; i < n; ++i) {
      const auto u = static_cast<uint16_t>(codes[i]);
      p.bytes[2 * i] = static_cast<uint8_t>(u & 0xFF);
      p.bytes[2 * i + 1] = static_cast<uint8_t>(u >> 8);
    }
  }
  return p;
}

std::vector<int16_t> unpack_codes(const uint8_t* data, DType dtype,
                                  const std::vector<int64_t>& shape, int64_t rows, int64_t cols,
                                  int bits, bool symmetric, const std::string& source) {
  const QRange r = quant_range(bits, symmetric, source + ": bits");
  const DType want = code_dtype(bits);
  const auto want_shape = packed_shape(rows, cols, bits);
  if (dtype != want) {
    core::throw_input("{}: {}-bit codes must be stored as {}, got {}", source, bits,
                      dtype_name(want), dtype_name(dtype));
  }
  if (shape != want_shape) {
    core::throw_input("{}: expected shape {} for {}-bit codes of a ({}, {}) weight, got {}", source,
                      shape_str(want_shape), bits, rows, cols, shape_str(shape));
  }
  const size_t uc = static_cast<size_t>(cols), pc = static_cast<size_t>(want_shape[1]);
  std::vector<int16_t> codes(count(rows, cols));
  for (size_t o = 0; o < static_cast<size_t>(rows); ++o) {
    for (size_t i = 0; i < uc; ++i) {
      int v = 0;
      if (want == DType::U8) {
        const uint8_t byte = data[o * pc + i / 2];
        v = (i % 2 == 0 ? (byte & 0x0F) : (byte >> 4)) + r.qmin;
      } else if (want == DType::I8) {
        v = static_cast<int8_t>(data[o * uc + i]);
      } else {
        const size_t k = 2 * (o * uc + i);
        v = static_cast<int16_t>(static_cast<uint16_t>(data[k] | (data[k + 1] << 8)));
      }
      if (v < r.qmin || v > r.qmax) {
        core::throw_input("{}: code {} at [{}, {}] outside [{}, {}] for {}-bit {} quantization",
                          source, v, o, i, r.qmin, r.qmax, bits,
                          symmetric ? "symmetric" : "asymmetric");
      }
      codes[o * uc + i] = static_cast<int16_t>(v);
    }
    if (want == DType::U8 && uc % 2 == 1 && (data[o * pc + pc - 1] >> 4) != 0)
      core::throw_input("{}: row {}: the pad nibble must be 0", source, o);
  }
  return codes;
}

void add_quantized_weight(SafeTensorsWriter& writer, const std::string& name,
                          const QuantizedWeightData& w) {
  const size_t n = w.spec.per_channel ? static_cast<size_t>(w.rows) : 1;
  if (w.codes.size() != count(w.rows, w.cols) || w.scale.size() != n ||
      w.zero_point.size() != n) {
    core::throw_internal("add_quantized_weight '{}': {} codes, {} scales, {} zero points for a "
                         "({}, {}) weight", name, w.codes.size(), w.scale.size(),
                         w.zero_point.size(), w.rows, w.cols);
  }
  const PackedCodes p = pack_codes(w.codes.data(), w.rows, w.cols, w.spec.bits, w.spec.symmetric);
  writer.add(name, p.dtype, p.shape, p.bytes.data(), p.bytes.size());
  writer.add_f32(name + ".scale", {static_cast<int64_t>(n)}, w.scale.data());
  if (!w.spec.symmetric) {
    writer.add(name + ".zero_point", DType::I32, {static_cast<int64_t>(n)}, w.zero_point.data(),
               n * sizeof(int32_t));
  }
}

QuantizedWeightData read_quantized_weight(const SafeTensorsFile& file, const std::string& name,
                                          const WeightQuant& spec, int64_t rows, int64_t cols) {
  const std::string src = fmt::format("{}: tensor '{}'", file.source(), name);
  if (!file.has(name)) {
    core::throw_input("{}: missing (listed in metadata 'vitopt.quant' weights; expected {}-bit "
                      "codes of a ({}, {}) weight)", src, spec.bits, rows, cols);
  }
  const TensorInfo& info = file.info(name);
  QuantizedWeightData w;
  w.spec = spec;
  w.rows = rows;
  w.cols = cols;
  w.codes = unpack_codes(file.data(name), info.dtype, info.shape, rows, cols, spec.bits,
                         spec.symmetric, src);
  const int64_t n = spec.per_channel ? rows : 1;
  const std::string sname = name + ".scale";
  if (!file.has(sname)) core::throw_input("{}: quantized weight without '{}'", src, sname);
  const TensorInfo& si = file.info(sname);
  if (si.dtype != DType::F32 || si.shape != std::vector<int64_t>{n}) {
    core::throw_input("{}: tensor '{}': expected F32 [{}] ({}), got {} {}", file.source(), sname, n,
                      spec.per_channel ? "one scale per output row" : "one scale per tensor",
                      dtype_name(si.dtype), shape_str(si.shape));
  }
  w.scale = file.read_f32(sname);
  for (float s : w.scale) {
    if (!(s > 0) || !std::isfinite(s))
      core::throw_input("{}: tensor '{}': expected finite scales > 0, got {}", file.source(), sname, s);
  }
  const std::string zname = name + ".zero_point";
  w.zero_point.assign(static_cast<size_t>(n), 0);
  if (spec.symmetric) {
    if (file.has(zname))
      core::throw_input("{}: tensor '{}': a symmetric weight has no zero point", file.source(), zname);
    return w;
  }
  if (!file.has(zname)) core::throw_input("{}: asymmetric weight without '{}'", src, zname);
  const TensorInfo& zi = file.info(zname);
  if (zi.dtype != DType::I32 || zi.shape != std::vector<int64_t>{n}) {
    core::throw_input("{}: tensor '{}': expected I32 [{}], got {} {}", file.source(), zname, n,
                      dtype_name(zi.dtype), shape_str(zi.shape));
  }
  std::memcpy(w.zero_point.data(), file.data(zname), w.zero_point.size() * sizeof(int32_t));
  const QRange r = spec.range();
  for (int32_t z : w.zero_point) {
    if (z < r.qmin || z > r.qmax)
      core::throw_input("{}: tensor '{}': zero point {} outside [{}, {}]", file.source(), zname, z,
                        r.qmin, r.qmax);
  }
  return w;
}

}  // namespace vitopt::io
