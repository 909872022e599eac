// safetensors parsing (every field checked before any byte is trusted) and writing (64-byte aligned
// tensors in name order). Files from other writers, e.g. Python's `safetensors` (tightly packed,
// header padded to 8 bytes), load as well. Model-level meaning of the metadata lives elsewhere.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace vitopt::io {

// read_f32 memcpy's F32/F64 values straight from the file, which is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors reading assumes LE host");

namespace {

using core::json;
using core::throw_input;
using core::throw_internal;

constexpr size_t kPrefixBytes = 8;  // u64 LE header length
constexpr size_t kAlignment = 64;   // tensor alignment in files we write (cache line / AVX-512)
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // a real header is at most a few MB
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeRow& dtype_row(DType d) {
  for (const DTypeRow& row : kDTypes) {
    if (row.dtype == d) return row;
  }
  throw_internal("safetensors: invalid DType value {}", static_cast<int>(d));
}

size_t align_up(size_t n, size_t alignment) { return (n + alignment - 1) / alignment * alignment; }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// A JSON value for an error message. Only flat values are dumped: dumping recurses, and a hostile
// header could nest arrays deep enough to overflow the stack.
std::string describe(const json& j) {
  bool flat = j.is_primitive();
  if (j.is_array()) {
    flat = j.size() <= 16 &&
           std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_primitive(); });
  }
  if (!flat) return std::string(j.type_name());
  std::string text = j.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return std::string(j.type_name()) + " " + text;
}

// numel of `shape`, or nullopt-like false when the product overflows int64 (a hostile header).
bool checked_numel(const std::vector<int64_t>& shape, int64_t* numel) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) {
      *numel = 0;
      return true;
    }
  }
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return false;
  }
  *numel = n;
  return true;
}

// A non-negative JSON integer (shape dims, offsets); `what` names the field for the error.
uint64_t json_to_u64(const json& j, const std::string& source, const std::string& what) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    throw_input("{}: {}: expected a non-negative integer, got negative value {}", source, what,
                j.get<int64_t>());
  }
  throw_input("{}: {}: expected a non-negative integer, got {}", source, what, describe(j));
}

const json& required_field(const json& entry, const char* key, const std::string& source,
                           const std::string& name) {
  auto it = entry.find(key);
  if (it == entry.end()) {
    throw_input("{}: tensor '{}': field '{}' missing (expected dtype, shape and data_offsets)",
                source, name, key);
  }
  return *it;
}

std::vector<int64_t> parse_shape(const json& j, const std::string& source,
                                 const std::string& name) {
  if (!j.is_array()) {
    throw_input("{}: tensor '{}': field 'shape': expected an array of integers, got {}", source,
                name, describe(j));
  }
  std::vector<int64_t> shape;
  shape.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string what = fmt::format("tensor '{}': shape[{}]", name, i);
    uint64_t d = json_to_u64(j[i], source, what);
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw_input("{}: {}: dimension {} is too large", source, what, d);
    }
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

TensorInfo parse_entry(const std::string& name, const json& entry, size_t data_size,
                       const std::string& source) {
  if (!entry.is_object()) {
    throw_input("{}: tensor '{}': expected an object with dtype, shape, data_offsets, got {}",
                source, name, describe(entry));
  }
  TensorInfo info;
  info.name = name;
  const json& dtype = required_field(entry, "dtype", source, name);
  if (!dtype.is_string()) {
    throw_input("{}: tensor '{}': field 'dtype': expected a string, got {}", source, name,
                describe(dtype));
  }
  info.dtype = dtype_from_name(dtype.get<std::string>(), source + ": tensor '" + name + "'");
  info.shape = parse_shape(required_field(entry, "shape", source, name), source, name);

  const json& offsets = required_field(entry, "data_offsets", source, name);
  if (!offsets.is_array() || offsets.size() != 2) {
    throw_input("{}: tensor '{}': field 'data_offsets': expected [begin, end], got {}", source,
                name, describe(offsets));
  }
  const uint64_t begin = json_to_u64(offsets[0], source, "tensor '" + name + "': data_offsets[0]");
  const uint64_t end = json_to_u64(offsets[1], source, "tensor '" + name + "': data_offsets[1]");
  if (begin > end) {
    throw_input("{}: tensor '{}': data_offsets [{}, {}]: begin is after end", source, name, begin,
                end);
  }
  if (end > data_size) {
    throw_input("{}: tensor '{}': data_offsets [{}, {}] reach beyond the data buffer ({} bytes)",
                source, name, begin, end, data_size);
  }
  info.offset = static_cast<size_t>(begin);
  info.nbytes = static_cast<size_t>(end - begin);

  int64_t numel = 0;
  uint64_t expected_bytes = 0;
  const uint64_t elem = dtype_size(info.dtype);
  if (!checked_numel(info.shape, &numel) ||
      __builtin_mul_overflow(static_cast<uint64_t>(numel), elem, &expected_bytes)) {
    throw_input("{}: tensor '{}': shape {} is too large (element count overflows)", source, name,
                shape_str(info.shape));
  }
  if (expected_bytes != info.nbytes) {
    throw_input(
        "{}: tensor '{}': data_offsets span {} bytes, expected {} ({} x {} bytes for {} "
        "shape {})",
        source, name, info.nbytes, expected_bytes, numel, elem, dtype_name(info.dtype),
        shape_str(info.shape));
  }
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& j, const std::string& source) {
  if (!j.is_object()) {
    throw_input("{}: '{}' must be an object of strings, got {}", source, kMetadataKey, describe(j));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) {
      throw_input("{}: '{}' key '{}': expected a string value, got {}", source, kMetadataKey, key,
                  describe(value));
    }
    metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

// Gaps are fine; shared bytes are not (a writer bug or a crafted file). Empty tensors own no bytes.
void check_no_overlap(const std::map<std::string, TensorInfo>& tensors, const std::string& source) {
  std::vector<const TensorInfo*> sorted;
  for (const auto& [name, info] : tensors) {
    if (info.nbytes > 0) sorted.push_back(&info);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const TensorInfo& prev = *sorted[i - 1];
    const TensorInfo& cur = *sorted[i];
    if (cur.offset < prev.offset + prev.nbytes) {
      throw_input("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data buffer", source,
                  prev.name, prev.offset, prev.offset + prev.nbytes, cur.name, cur.offset,
                  cur.offset + cur.nbytes);
    }
  }
}

// core::json_parse turns syntax errors into InputError, but nlohmann reports a number too large
// for a double ("1e999") as out_of_range, not parse_error: catch every json error here.
json parse_header_json(const std::string& text, const std::string& source) {
  try {
    return core::json_parse(text, source);
  } catch (const json::exception& e) {
    throw_input("{}: invalid JSON in header: {}", source, e.what());
  }
}

}  // namespace

const char* dtype_name(DType d) { return dtype_row(d).name; }

size_t dtype_size(DType d) { return dtype_row(d).size; }

DType dtype_from_name(const std::string& name, const std::string& source) {
  for (const DTypeRow& row : kDTypes) {
    if (name == row.name) return row.dtype;
  }
  throw_input(
      "{}: unknown dtype '{}' (expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, "
      "BOOL)",
      source, name);
}

bool dtype_is_float(DType d) {
  return d == DType::F64 || d == DType::F32 || d == DType::F16 || d == DType::BF16;
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1Fu;
  uint32_t mant = bits & 0x3FFu;
  uint32_t out = 0;
  if (exp == 0x1F) {
    out = sign | 0x7F800000u | (mant << 13);  // inf, or NaN keeping its payload
  } else if (exp != 0) {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant != 0) {
    // Subnormal half = normal float: shift the mantissa up until its leading 1 is the implicit bit.
    int32_t e = 1;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3FFu;
    out = sign | (static_cast<uint32_t>(e + 127 - 15) << 23) | (mant << 13);
  } else {
    out = sign;  // +-0
  }
  return std::bit_cast<float>(out);
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- SafeTensorsFile ---------------------------------------------------------------------------

SafeTensorsFile SafeTensorsFile::load(const std::filesystem::path& path) {
  return parse(core::read_file_bytes(path), path.string());
}

SafeTensorsFile SafeTensorsFile::parse(std::vector<uint8_t> bytes, const std::string& source) {
  if (bytes.size() < kPrefixBytes) {
    throw_input("{}: file too short for safetensors: {} bytes, need at least {} (header length)",
                source, bytes.size(), kPrefixBytes);
  }
  const uint64_t header_len = read_u64_le(bytes.data());
  const uint64_t after_prefix = bytes.size() - kPrefixBytes;
  if (header_len > kMaxHeaderBytes) {
    throw_input("{}: header length {} exceeds the {} byte limit (not a safetensors file?)", source,
                header_len, kMaxHeaderBytes);
  }
  if (header_len > after_prefix) {
    throw_input(
        "{}: header length {} reaches beyond the file ({} bytes after the 8-byte prefix; "
        "truncated?)",
        source, header_len, after_prefix);
  }
  const auto* header_begin = reinterpret_cast<const char*>(bytes.data() + kPrefixBytes);
  const json header =
      parse_header_json(std::string(header_begin, static_cast<size_t>(header_len)), source);
  if (!header.is_object()) {
    throw_input("{}: header must be a JSON object, got {}", source, describe(header));
  }

  SafeTensorsFile file;
  file.source_ = source;
  file.data_start_ = kPrefixBytes + static_cast<size_t>(header_len);
  const size_t data_size = bytes.size() - file.data_start_;
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      file.metadata_ = parse_metadata(entry, source);
    } else {
      file.tensors_.emplace(name, parse_entry(name, entry, data_size, source));
    }
  }
  check_no_overlap(file.tensors_, source);
  file.bytes_ = std::move(bytes);
  return file;
}

const std::string* SafeTensorsFile::metadata_value(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;  // std::map iterates in sorted order
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw_input("{}: tensor '{}' not found ({} tensors in the file)", source_, name,
                tensors_.size());
  }
  return it->second;
}

const uint8_t* SafeTensorsFile::data(const std::string& name) const {
  return bytes_.data() + data_start_ + info(name).offset;
}

std::vector<float> SafeTensorsFile::read_f32(const std::string& name,
                                             const std::vector<int64_t>* expect) const {
  const TensorInfo& t = info(name);
  if (expect != nullptr && *expect != t.shape) {
    throw_input("{}: tensor '{}': expected shape {}, got {}", source_, name, shape_str(*expect),
                shape_str(t.shape));
  }
  if (!dtype_is_float(t.dtype)) {
    throw_input("{}: tensor '{}' has dtype {}: not a float tensor (expected F32, F16, BF16 or F64)",
                source_, name, dtype_name(t.dtype));
  }
  const size_t n = static_cast<size_t>(t.numel());
  const uint8_t* src = data(name);
  std::vector<float> out(n);
  // memcpy everywhere: tensors from other writers need not be aligned.
  switch (t.dtype) {
    case DType::F32:
      if (n > 0) std::memcpy(out.data(), src, n * sizeof(float));
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double v = 0;
        std::memcpy(&v, src + i * sizeof(double), sizeof(double));
        out[i] = static_cast<float>(v);
      }
      break;
    case DType::F16:
    case DType::BF16: {
      const bool half = t.dtype == DType::F16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t v = 0;
        std::memcpy(&v, src + i * 2, 2);
        out[i] = half ? f16_to_f32(v) : bf16_to_f32(v);
      }
      break;
    }
    default:
      throw_internal("{}: unreachable dtype {}", source_, dtype_name(t.dtype));
  }
  return out;
}

// ---- SafeTensorsWriter -------------------------------------------------------------------------

void SafeTensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data, size_t nbytes) {
  if (name == kMetadataKey) throw_internal("safetensors writer: '{}' is reserved", name);
  if (tensors_.count(name) != 0) {
    throw_internal("safetensors writer: tensor '{}' added twice", name);
  }
  for (int64_t d : shape) {
    if (d < 0) {
      throw_internal("safetensors writer: tensor '{}': negative dim in shape {}", name,
                     shape_str(shape));
    }
  }
  int64_t numel = 0;
  uint64_t expected = 0;
  if (!checked_numel(shape, &numel) ||
      __builtin_mul_overflow(static_cast<uint64_t>(numel), dtype_size(dtype), &expected) ||
      expected != nbytes) {
    throw_internal(
        "safetensors writer: tensor '{}': {} bytes given, expected {} x {} bytes for {} "
        "shape {}",
        name, nbytes, numel, dtype_size(dtype), dtype_name(dtype), shape_str(shape));
  }
  if (nbytes > 0 && data == nullptr) {
    throw_internal("safetensors writer: tensor '{}': null data", name);
  }
  Entry entry{dtype, std::move(shape), {}};
  if (nbytes > 0) {
    const auto* p = static_cast<const uint8_t*>(data);
    entry.bytes.assign(p, p + nbytes);
  }
  tensors_.emplace(name, std::move(entry));
}

void SafeTensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape,
                                const float* data) {
  int64_t numel = 0;
  if (!checked_numel(shape, &numel) || numel < 0) {
    throw_internal("safetensors writer: tensor '{}': invalid shape {}", name, shape_str(shape));
  }
  const size_t nbytes = static_cast<size_t>(numel) * sizeof(float);
  add(name, DType::F32, std::move(shape), data, nbytes);
}

void SafeTensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

std::vector<uint8_t> SafeTensorsWriter::serialize() const {
  // Metadata first, then tensors in name order, as Python's safetensors writes them.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header[kMetadataKey] = metadata_;
  size_t offset = 0;
  for (const auto& [name, entry] : tensors_) {
    offset = align_up(offset, kAlignment);
    header[name] = {{"dtype", dtype_name(entry.dtype)},
                    {"shape", entry.shape},
                    {"data_offsets", {offset, offset + entry.bytes.size()}}};
    offset += entry.bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw_internal("safetensors writer: cannot encode header (names must be UTF-8): {}", e.what());
  }
  // Spaces are valid JSON whitespace: they make the data buffer start on a 64-byte boundary.
  text.resize(align_up(kPrefixBytes + text.size(), kAlignment) - kPrefixBytes, ' ');

  std::vector<uint8_t> out(kPrefixBytes + text.size() + offset, 0);
  uint64_t len = text.size();
  for (size_t i = 0; i < kPrefixBytes; ++i) out[i] = static_cast<uint8_t>(len >> (8 * i));
  std::memcpy(out.data() + kPrefixBytes, text.data(), text.size());
  uint8_t* data = out.data() + kPrefixBytes + text.size();
  offset = 0;
  for (const auto& [name, entry] : tensors_) {
    offset = align_up(offset, kAlignment);
    if (!entry.bytes.empty()) std::memcpy(data + offset, entry.bytes.data(), entry.bytes.size());
    offset += entry.bytes.size();
  }
  return out;
}

void SafeTensorsWriter::write(const std::filesystem::path& path) const {
  const std::vector<uint8_t> bytes = serialize();
  core::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace vitopt::io
