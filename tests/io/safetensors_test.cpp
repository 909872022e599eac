// Tests for io/safetensors: bit-exact round trips for every dtype, the 64-byte layout, half/bf16
// conversion against hand-computed values, files assembled byte by byte the way other tools write
// them, and every corrupt or truncated input ending in an InputError that names the file.
#include "io/safetensors.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"

namespace vitopt::io {
namespace {

using vitopt::testing::TempDir;

constexpr DType kAllDTypes[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                                DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};

std::vector<uint8_t> random_bytes(size_t n, DType dtype, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  if (dtype == DType::BOOL) {
    for (auto& b : out) b &= 1;
  }
  return out;
}

// The file the way another writer would produce it: u64 LE length, JSON text padded with spaces to
// a multiple of 8 (as Python's safetensors does), then the data, no alignment.
std::vector<uint8_t> assemble(std::string header, const std::vector<uint8_t>& data) {
  while (header.size() % 8 != 0) header.push_back(' ');
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + static_cast<std::ptrdiff_t>(8 + n));
  return out;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Parses `bytes`, expecting an InputError whose message names `source` and contains `keyword`.
void expect_input_error(std::vector<uint8_t> bytes, const std::string& source,
                        const std::string& keyword) {
  try {
    SafeTensorsFile::parse(std::move(bytes), source);
    ADD_FAILURE() << "no error, expected one mentioning '" << keyword << "'";
  } catch (const core::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(source), std::string::npos) << what;
    EXPECT_NE(what.find(keyword), std::string::npos) << "missing '" << keyword << "': " << what;
  }
}

TEST(DTypeTest, NamesAndSizesRoundTrip) {
  const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
  for (size_t i = 0; i < std::size(kAllDTypes); ++i) {
    const DType d = kAllDTypes[i];
    EXPECT_EQ(dtype_from_name(dtype_name(d), "x"), d);
    EXPECT_EQ(dtype_size(d), sizes[i]) << dtype_name(d);
  }
  EXPECT_TRUE(dtype_is_float(DType::BF16));
  EXPECT_FALSE(dtype_is_float(DType::I8));
}

TEST(DTypeTest, UnknownNameThrowsInputError) {
  try {
    dtype_from_name("F8_E4M3", "model.safetensors");
    FAIL() << "expected InputError";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown dtype 'F8_E4M3'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
}

TEST(SafeTensorsTest, RoundTripEveryDTypeBitExact) {
  TempDir dir;
  SafeTensorsWriter writer;
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t i = 0; i < std::size(kAllDTypes); ++i) {
    const DType d = kAllDTypes[i];
    const std::vector<int64_t> shape = {3, 5};
    payloads.push_back(random_bytes(15 * dtype_size(d), d, static_cast<uint32_t>(i)));
    writer.add(std::string("t_") + dtype_name(d), d, shape, payloads.back().data(),
               payloads.back().size());
  }
  writer.set_metadata("config", R"({"embed_dim": 128})");
  writer.set_metadata("format", "pt");
  const auto path = dir / "all.safetensors";
  writer.write(path);

  const SafeTensorsFile file = SafeTensorsFile::load(path);
  EXPECT_EQ(file.names().size(), std::size(kAllDTypes));
  for (size_t i = 0; i < std::size(kAllDTypes); ++i) {
    const std::string name = std::string("t_") + dtype_name(kAllDTypes[i]);
    ASSERT_TRUE(file.has(name)) << name;
    const TensorInfo& info = file.info(name);
    EXPECT_EQ(info.dtype, kAllDTypes[i]);
    EXPECT_EQ(info.shape, (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(info.numel(), 15);
    ASSERT_EQ(info.nbytes, payloads[i].size());
    EXPECT_EQ(std::memcmp(file.data(name), payloads[i].data(), info.nbytes), 0) << name;
  }
  ASSERT_NE(file.metadata_value("config"), nullptr);
  EXPECT_EQ(*file.metadata_value("config"), R"({"embed_dim": 128})");
  EXPECT_EQ(*file.metadata_value("format"), "pt");
  EXPECT_EQ(file.metadata_value("missing"), nullptr);
  EXPECT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.file_size(), writer.serialize().size());
}

TEST(SafeTensorsTest, ScalarAndZeroSizeTensors) {
  SafeTensorsWriter writer;
  const float scalar = 3.25f;
  writer.add_f32("scalar", {}, &scalar);
  writer.add_f32("empty", {0}, nullptr);
  writer.add("empty2d", DType::I8, {4, 0}, nullptr, 0);
  const float after = -1.5f;
  writer.add_f32("z_after", {1}, &after);
  const SafeTensorsFile file = SafeTensorsFile::parse(writer.serialize(), "mem");

  EXPECT_TRUE(file.info("scalar").shape.empty());
  EXPECT_EQ(file.info("scalar").numel(), 1);
  EXPECT_EQ(file.read_f32("scalar"), std::vector<float>{3.25f});
  EXPECT_EQ(file.info("empty").numel(), 0);
  EXPECT_EQ(file.info("empty").nbytes, 0u);
  EXPECT_TRUE(file.read_f32("empty").empty());
  EXPECT_EQ(file.info("empty2d").shape, (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(file.read_f32("z_after"), std::vector<float>{-1.5f});
}

TEST(SafeTensorsTest, AwkwardShapesRoundTripAsF32) {
  const std::vector<std::vector<int64_t>> shapes = {{1}, {3}, {17}, {197}, {1, 197, 3}, {17, 3}};
  SafeTensorsWriter writer;
  std::vector<std::vector<float>> values;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  for (size_t i = 0; i < shapes.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : shapes[i]) n *= d;
    values.emplace_back(static_cast<size_t>(n));
    for (auto& v : values.back()) v = dist(rng);
    writer.add_f32(fmt::format("w{}", i), shapes[i], values.back().data());
  }
  const SafeTensorsFile file = SafeTensorsFile::parse(writer.serialize(), "mem");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string name = fmt::format("w{}", i);
    EXPECT_EQ(file.read_f32(name, &shapes[i]), values[i]) << name;
  }
}

TEST(SafeTensorsTest, DataOffsetsAre64ByteAligned) {
  SafeTensorsWriter writer;
  const std::vector<uint8_t> odd(13, 0xAB);
  for (int i = 0; i < 5; ++i) writer.add(fmt::format("t{}", i), DType::U8, {13}, odd.data(), 13);
  writer.set_metadata("k", "v");
  const std::vector<uint8_t> bytes = writer.serialize();
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 64, 0u);
  const SafeTensorsFile file = SafeTensorsFile::parse(bytes, "mem");
  const uint8_t* base = file.data("t0") - file.info("t0").offset;
  for (const std::string& name : file.names()) {
    EXPECT_EQ(file.info(name).offset % 64, 0u) << name;
    EXPECT_EQ(static_cast<size_t>(file.data(name) - base + 8 + header_len) % 64, 0u) << name;
    EXPECT_EQ(file.data(name)[0], 0xAB);
  }
  EXPECT_EQ(file.info("t4").offset, 4u * 64);
  // Tensors come in name order; the file ends right after the last one.
  EXPECT_EQ(bytes.size(), 8 + header_len + 4 * 64 + 13);
}

TEST(SafeTensorsTest, EmptyMetadataIsNotWritten) {
  SafeTensorsWriter writer;
  const float v = 1.0f;
  writer.add_f32("a", {1}, &v);
  const std::vector<uint8_t> bytes = writer.serialize();
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text.find("__metadata__"), std::string::npos);
  writer.set_metadata("k", "v");
  const std::vector<uint8_t> with = writer.serialize();
  EXPECT_NE(std::string(with.begin(), with.end()).find("__metadata__"), std::string::npos);
}

TEST(HalfConversionTest, F16HandComputedValues) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC100), -2.5f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));  // signalling NaN must not become inf
  EXPECT_EQ(f16_to_f32(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
}

TEST(HalfConversionTest, Bf16HandComputedValues) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC020), -2.5f);
  EXPECT_EQ(bf16_to_f32(0x477F), 65280.0f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_f32(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
}

TEST(HalfConversionTest, ReadF32ConvertsEveryFloatDType) {
  const uint16_t half[] = {0x3C00, 0xC100, 0x7BFF, 0x0001};
  const uint16_t bf16[] = {0x3F80, 0xC020, 0x7F80, 0x0001};
  const double f64[] = {1.0, -2.5, 1e-3, 65504.0};
  SafeTensorsWriter writer;
  writer.add("h", DType::F16, {4}, half, sizeof(half));
  writer.add("b", DType::BF16, {2, 2}, bf16, sizeof(bf16));
  writer.add("d", DType::F64, {4}, f64, sizeof(f64));
  const SafeTensorsFile file = SafeTensorsFile::parse(writer.serialize(), "mem");
  EXPECT_EQ(file.read_f32("h"), (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(file.read_f32("b"),
            (std::vector<float>{1.0f, -2.5f, std::numeric_limits<float>::infinity(),
                                std::ldexp(1.0f, -133)}));
  EXPECT_EQ(file.read_f32("d"), (std::vector<float>{1.0f, -2.5f, 1e-3f, 65504.0f}));
}

TEST(SafeTensorsTest, ReadF32ErrorsNameTensorAndShapes) {
  SafeTensorsWriter writer;
  const int8_t q[] = {1, -2, 3};
  writer.add("q", DType::I8, {3}, q, 3);
  const float f[] = {1, 2, 3, 4, 5, 6};
  writer.add_f32("w", {2, 3}, f);
  const SafeTensorsFile file = SafeTensorsFile::parse(writer.serialize(), "vit.safetensors");
  try {
    file.read_f32("q");
    FAIL() << "integer tensor read as float";
  } catch (const core::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a float tensor"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'q'"), std::string::npos) << e.what();
  }
  const std::vector<int64_t> expect = {3, 2};
  try {
    file.read_f32("w", &expect);
    FAIL() << "shape mismatch not caught";
  } catch (const core::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("vit.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("expected shape [3, 2], got [2, 3]"), std::string::npos) << what;
  }
  EXPECT_THROW(file.info("nope"), core::InputError);
  EXPECT_THROW(file.data("nope"), core::InputError);
}

TEST(SafeTensorsTest, WriterRejectsBadInput) {
  SafeTensorsWriter writer;
  const float v[4] = {};
  EXPECT_THROW(writer.add("a", DType::F32, {2, 2}, v, 12), core::InternalError);
  EXPECT_THROW(writer.add("a", DType::F32, {-1, -4}, v, 16), core::InternalError);
  writer.add("a", DType::F32, {2, 2}, v, 16);
  EXPECT_THROW(writer.add("a", DType::F32, {2, 2}, v, 16), core::InternalError);
  EXPECT_THROW(writer.add("__metadata__", DType::F32, {1}, v, 4), core::InternalError);
}

// Bytes built by hand the way Python's safetensors lays them out: packed, unaligned, metadata
// first, header padded to 8 with spaces. Also a gap between tensors (allowed) and F16 data.
TEST(SafeTensorsTest, HandAssembledForeignFileLoads) {
  std::vector<uint8_t> data = f32_bytes({1.0f, 2.0f, 3.0f});  // a: [0, 12)
  const uint8_t half[] = {0x00, 0x3C, 0x00, 0xC1};            // b: [12, 16) = {1, -2.5}
  data.insert(data.end(), half, half + 4);
  data.insert(data.end(), 3, 0xEE);                   // gap [16, 19)
  const std::vector<uint8_t> c = f32_bytes({-7.0f});  // c: [19, 23), unaligned
  data.insert(data.end(), c.begin(), c.end());
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},)"
      R"("c":{"dtype":"F32","shape":[1,1],"data_offsets":[19,23]}})";
  const SafeTensorsFile file = SafeTensorsFile::parse(assemble(header, data), "torch.safetensors");
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*file.metadata_value("format"), "pt");
  EXPECT_EQ(file.read_f32("a"), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(file.read_f32("b"), (std::vector<float>{1.0f, -2.5f}));
  const std::vector<int64_t> shape_c = {1, 1};
  EXPECT_EQ(file.read_f32("c", &shape_c), std::vector<float>{-7.0f});
  EXPECT_EQ(file.info("c").offset, 19u);
}

struct CorruptCase {
  const char* label;
  std::string header;
  size_t data_bytes;
  const char* keyword;
};

TEST(SafeTensorsCorruptTest, EveryBadHeaderIsAnInputErrorNamingTheFile) {
  const std::string ok = R"("dtype":"F32","shape":[2])";
  const std::vector<CorruptCase> cases = {
      {"not json", "{\"a\": ", 0, "invalid JSON"},
      {"number overflow", R"({"a": 1e999})", 0, "invalid JSON"},
      {"bad utf-8", "{\"a\xff\": 1}", 0, "invalid JSON"},
      {"array header", "[1, 2]", 0, "must be a JSON object"},
      {"entry not object", R"({"a": 5})", 0, "expected an object"},
      {"missing dtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "'dtype' missing"},
      {"missing shape", R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "'shape' missing"},
      {"missing offsets", "{\"a\":{" + ok + "}}", 8, "'data_offsets' missing"},
      {"dtype not string", R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8, "dtype"},
      {"unknown dtype", R"({"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", 8,
       "unknown dtype"},
      {"shape not array", R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, "shape"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "negative"},
      {"float dim", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8,
       "non-negative integer"},
      {"offsets one value", "{\"a\":{" + ok + ",\"data_offsets\":[8]}}", 8, "[begin, end]"},
      {"offsets object", "{\"a\":{" + ok + ",\"data_offsets\":{}}}", 8, "data_offsets"},
      {"offsets negative", "{\"a\":{" + ok + ",\"data_offsets\":[-8,0]}}", 8, "negative"},
      {"begin after end", "{\"a\":{" + ok + ",\"data_offsets\":[8,0]}}", 8, "begin is after end"},
      {"end beyond data", "{\"a\":{" + ok + ",\"data_offsets\":[4,12]}}", 8,
       "beyond the data buffer"},
      {"huge end", "{\"a\":{" + ok + ",\"data_offsets\":[0,18446744073709551615]}}", 8,
       "beyond the data buffer"},
      {"size mismatch", "{\"a\":{" + ok + ",\"data_offsets\":[0,4]}}", 8, "expected 8"},
      {"numel overflow",
       R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
       "overflow"},
      {"bytes overflow",
       R"({"a":{"dtype":"F64","shape":[4611686018427387904],)"
       R"("data_offsets":[0,8]}})",
       8, "overflow"},
      {"overlap",
       "{\"a\":{" + ok + ",\"data_offsets\":[0,8]},\"b\":{" + ok + ",\"data_offsets\":[4,12]}}", 12,
       "overlap"},
      {"metadata not object", R"({"__metadata__":[1]})", 0, "__metadata__"},
      {"metadata non-string", R"({"__metadata__":{"epochs":5}})", 0, "expected a string"},
  };
  TempDir dir;
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.label);
    const std::vector<uint8_t> bytes = assemble(c.header, std::vector<uint8_t>(c.data_bytes, 0));
    expect_input_error(bytes, "corrupt.safetensors", c.keyword);
    // Through load() too: the message must carry the real path.
    const auto path = dir / "bad_file.safetensors";
    core::write_file_atomic(path, bytes.data(), bytes.size());
    try {
      SafeTensorsFile::load(path);
      ADD_FAILURE() << "load accepted a corrupt file";
    } catch (const core::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("bad_file.safetensors"), std::string::npos) << e.what();
    }
  }
}

TEST(SafeTensorsCorruptTest, PrefixErrors) {
  expect_input_error({1, 2, 3}, "tiny.safetensors", "too short");
  expect_input_error({}, "empty.safetensors", "too short");
  // Header length 1 GB: absurd, rejected before any allocation.
  std::vector<uint8_t> absurd = {0, 0, 0, 0x40, 0, 0, 0, 0, '{', '}'};
  expect_input_error(absurd, "absurd.safetensors", "limit");
  // Header length 100 in a 20-byte file.
  std::vector<uint8_t> beyond = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
  expect_input_error(beyond, "short.safetensors", "beyond the file");
  // Header length 0: empty JSON text.
  expect_input_error(std::vector<uint8_t>(8, 0), "zero.safetensors", "invalid JSON");
}

TEST(SafeTensorsCorruptTest, EveryTruncationThrowsInputError) {
  SafeTensorsWriter writer;
  const std::vector<float> w(37, 0.5f);
  writer.add_f32("w", {37}, w.data());
  const uint16_t h[3] = {1, 2, 3};
  writer.add("h", DType::F16, {3}, h, sizeof(h));
  writer.set_metadata("config", "{}");
  const std::vector<uint8_t> full = writer.serialize();
  ASSERT_NO_THROW(SafeTensorsFile::parse(full, "full"));
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::vector<uint8_t> part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_THROW(SafeTensorsFile::parse(std::move(part), "cut.safetensors"), core::InputError)
        << "cut at " << cut << " of " << full.size();
  }
}

TEST(SafeTensorsCorruptTest, MissingFileIsInputError) {
  TempDir dir;
  EXPECT_THROW(SafeTensorsFile::load(dir / "absent.safetensors"), core::InputError);
}

}  // namespace
}  // namespace vitopt::io
