// safetensors read/write with full validation, shared by the LibTorch side and the runtime (so: no
// LibTorch here). Format: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__":
// {"key": "string value"}}, then the data buffer. Offsets are relative to the data buffer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vitopt::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType d);                                            // "F32", ...
size_t dtype_size(DType d);                                                 // bytes per element
DType dtype_from_name(const std::string& name, const std::string& source);  // InputError if unknown
bool dtype_is_float(DType d);                                               // F64, F32, F16, BF16

// IEEE binary16 and bfloat16 bit patterns -> float, exact (subnormals, inf and NaN included).
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t offset = 0;  // within the data buffer
  size_t nbytes = 0;
  int64_t numel() const;
};

// A loaded file: owns its bytes; tensors are views into them (aligned copies on request).
class SafeTensorsFile {
 public:
  // Reads and validates the whole file. Throws core::InputError naming the path and the problem:
  // too short, header length beyond the file, invalid JSON, unknown dtype, shape/offset mismatch,
  // offsets outside the data buffer, overlapping tensors, non-string metadata. Gaps between
  // tensors are allowed (our writer aligns to 64 bytes; other writers pack them tightly).
  static SafeTensorsFile load(const std::filesystem::path& path);
  // Same validation on bytes already in memory (`source` names them in errors).
  static SafeTensorsFile parse(std::vector<uint8_t> bytes, const std::string& source);

  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string* metadata_value(const std::string& key) const;  // nullptr if absent
  std::vector<std::string> names() const;                           // sorted
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws InputError "<file>: tensor '<name>' not found" if absent.
  const TensorInfo& info(const std::string& name) const;
  const uint8_t* data(const std::string& name) const;
  // Copies a tensor as float32 (F32/F16/BF16/F64 converted); checks the shape if `expect` given.
  // Integer/bool tensors throw InputError (they are quantized data, not floats).
  std::vector<float> read_f32(const std::string& name,
                              const std::vector<int64_t>* expect = nullptr) const;
  size_t file_size() const { return bytes_.size(); }

 private:
  std::string source_;
  std::vector<uint8_t> bytes_;
  size_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors (copies their bytes) and writes one file atomically. Tensors are laid out in
// name order, each aligned to 64 bytes within the data buffer (the header is space-padded so the
// buffer itself starts 64-byte aligned), which lets the runtime use them in place.
class SafeTensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
           size_t nbytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data);
  void set_metadata(const std::string& key, const std::string& value);
  std::vector<uint8_t> serialize() const;
  void write(const std::filesystem::path& path) const;  // atomic

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace vitopt::io
