// Code packing and quantized-weight tensors: bit-exact round trips for every width 2..16 on
// awkward shapes, the documented byte layout (nibbles: element 2k low, q - qmin, pad 0; I16 little
// endian), and one refusal per check of read_quantized_weight, naming the file and tensor.
#include "io/code_packing.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "core/error.h"
#include "test_util.h"

namespace vitopt::io {
namespace {

using vitopt::testing::expect_input_error;

std::vector<int16_t> random_codes(int64_t rows, int64_t cols, QRange r, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(r.qmin, r.qmax);
  std::vector<int16_t> q(static_cast<size_t>(rows * cols));
  for (auto& v : q) v = static_cast<int16_t>(d(rng));
  q.front() = static_cast<int16_t>(r.qmin);  // the extremes always appear
  q.back() = static_cast<int16_t>(r.qmax);
  return q;
}

TEST(CodePacking, RoundTripIsBitExactForEveryWidth) {
  for (int bits = 2; bits <= 16; ++bits) {
    for (bool sym : {true, false}) {
      const QRange r = quant_range(bits, sym);
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {5, 33}, {2, 128}}) {
        const auto codes = random_codes(rows, cols, r, static_cast<uint64_t>(bits * 100 + cols));
        const PackedCodes p = pack_codes(codes.data(), rows, cols, bits, sym);
        EXPECT_EQ(p.dtype, bits <= 4 ? DType::U8 : bits <= 8 ? DType::I8 : DType::I16);
        EXPECT_EQ(p.shape, packed_shape(rows, cols, bits));
        EXPECT_EQ(p.bytes.size(), static_cast<size_t>(p.shape[0] * p.shape[1]) * dtype_size(p.dtype));
        const auto back = unpack_codes(p.bytes.data(), p.dtype, p.shape, rows, cols, bits, sym, "t");
        EXPECT_EQ(back, codes) << bits << " bits, sym " << sym << ", " << rows << "x" << cols;
      }
    }
  }
}

TEST(CodePacking, DocumentedByteLayout) {
  const int16_t four[] = {-8, 7, 0};  // 4-bit asymmetric: stored q + 8 = 0, 15, 8 (+ pad 0)
  auto p = pack_codes(four, 1, 3, 4, false);
  ASSERT_EQ(p.bytes, (std::vector<uint8_t>{0xF0, 0x08}));
  const int16_t sixteen[] = {-2, 300};
  p = pack_codes(sixteen, 1, 2, 16, true);
  EXPECT_EQ(p.bytes, (std::vector<uint8_t>{0xFE, 0xFF, 0x2C, 0x01}));
  const int16_t eight[] = {-127, 5};
  p = pack_codes(eight, 2, 1, 8, true);
  EXPECT_EQ(p.bytes, (std::vector<uint8_t>{0x81, 0x05}));
  const int16_t bad[] = {-128};
  EXPECT_THROW(pack_codes(bad, 1, 1, 8, true), core::InternalError);  // a writer bug, not input
}

TEST(CodePacking, UnpackRefusesBadBytes) {
  const std::vector<uint8_t> bytes = {0x80, 0x01};
  expect_input_error([&] { unpack_codes(bytes.data(), DType::I8, {1, 2}, 1, 2, 8, true, "w"); },
                 {"w", "code -128", "outside [-127, 127]"});
  expect_input_error([&] { unpack_codes(bytes.data(), DType::U8, {1, 2}, 1, 2, 8, true, "w"); },
                 {"8-bit codes must be stored as I8", "got U8"});
  expect_input_error([&] { unpack_codes(bytes.data(), DType::I8, {2, 1}, 1, 2, 8, true, "w"); },
                 {"expected shape [1, 2]", "got [2, 1]"});
  const std::vector<uint8_t> nib = {0x21, 0x13};  // 3 columns: the second byte's high nibble pads
  expect_input_error([&] { unpack_codes(nib.data(), DType::U8, {1, 2}, 1, 3, 4, false, "w"); },
                 {"row 0", "pad nibble"});
  const std::vector<uint8_t> three = {0x07};  // 3-bit symmetric: stored 7 - 3 = 4 > qmax 3
  expect_input_error([&] { unpack_codes(three.data(), DType::U8, {1, 1}, 1, 2, 3, true, "w"); },
                 {"outside [-3, 3]"});
}

QuantizedWeightData example_weight(bool symmetric, bool per_channel) {
  QuantizedWeightData w;
  w.spec = {4, symmetric, per_channel};
  w.rows = 3;
  w.cols = 5;
  w.codes = random_codes(3, 5, w.spec.range(), 9);
  const size_t n = per_channel ? 3 : 1;
  w.scale.assign(n, 0.25f);
  w.zero_point.assign(n, symmetric ? 0 : -3);
  return w;
}

TEST(QuantizedWeightTensors, WriteReadRoundTrip) {
  for (bool sym : {true, false}) {
    for (bool pc : {true, false}) {
      const auto w = example_weight(sym, pc);
      SafeTensorsWriter writer;
      add_quantized_weight(writer, "blocks.0.mlp.fc1.weight", w);
      const auto file = SafeTensorsFile::parse(writer.serialize(), "q.safetensors");
      EXPECT_EQ(file.has("blocks.0.mlp.fc1.weight.zero_point"), !sym);
      const auto back = read_quantized_weight(file, "blocks.0.mlp.fc1.weight", w.spec, 3, 5);
      EXPECT_EQ(back.codes, w.codes);
      EXPECT_EQ(back.scale, w.scale);
      EXPECT_EQ(back.zero_point, w.zero_point);
      EXPECT_EQ(back.scale_of(2), 0.25f);
    }
  }
}

TEST(QuantizedWeightTensors, EveryCheckNamesTheTensor) {
  const std::string name = "head.weight";
  auto file_with = [&](const QuantizedWeightData& w, const std::function<void(SafeTensorsWriter&)>& extra) {
    SafeTensorsWriter writer;
    add_quantized_weight(writer, name, w);
    extra(writer);
    return SafeTensorsFile::parse(writer.serialize(), "q.safetensors");
  };
  const auto asym = example_weight(false, true);
  auto read = [&](const SafeTensorsFile& f, WeightQuant spec) {
    return [&f, spec, &name] { read_quantized_weight(f, name, spec, 3, 5); };
  };
  auto zero_scale = asym;
  zero_scale.scale[1] = 0.0f;  // the writer does not validate; the reader must
  const auto f1 = file_with(zero_scale, [](SafeTensorsWriter&) {});
  expect_input_error(read(f1, asym.spec), {"q.safetensors", "head.weight.scale", "> 0"});
  auto bad_zp = asym;
  bad_zp.zero_point[0] = 8;
  const auto f2 = file_with(bad_zp, [](SafeTensorsWriter&) {});
  expect_input_error(read(f2, asym.spec), {"head.weight.zero_point", "zero point 8", "[-8, 7]"});
  const auto f3 = file_with(asym, [](SafeTensorsWriter&) {});
  expect_input_error(read(f3, {4, false, false}), {"head.weight.scale", "F32 [1]", "[3]"});
  expect_input_error(read(f3, {8, false, true}), {"head.weight", "stored as I8"});
  const auto sym = example_weight(true, true);
  const auto f4 = file_with(sym, [](SafeTensorsWriter&) {});
  expect_input_error(read(f4, {4, false, true}), {"asymmetric weight without 'head.weight.zero_point'"});
  const int32_t zp[3] = {0, 0, 0};
  const auto f6 = file_with(sym, [&](SafeTensorsWriter& w) {
    w.add(name + ".zero_point", DType::I32, {3}, zp, sizeof(zp));
  });
  expect_input_error(read(f6, sym.spec), {"head.weight.zero_point", "symmetric weight has no zero point"});
  SafeTensorsWriter empty;
  const float one = 1.0f;
  empty.add_f32("other", {1}, &one);
  const auto f5 = SafeTensorsFile::parse(empty.serialize(), "q.safetensors");
  expect_input_error(read(f5, sym.spec), {"tensor 'head.weight'", "missing"});
}

}  // namespace
}  // namespace vitopt::io
