// IDX reader (the MNIST / Fashion-MNIST format): big-endian magic 0x0000080D (D = dims), D
// big-endian uint32 sizes, then the unsigned bytes. Files may be gzipped (name ends in .gz).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace vitopt::data {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // ubyte, 3 dims (N, rows, cols)
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // ubyte, 1 dim (N)

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;  // row-major, prod(dims) bytes
};

// Whole file contents; gunzipped if the name ends in ".gz". Errors name the file.
std::vector<uint8_t> read_maybe_gzip(const std::filesystem::path& file);

// Reads and validates one IDX file: magic must equal `expected_magic`, size must match the dims.
IdxArray read_idx_file(const std::filesystem::path& file, uint32_t expected_magic);

// True if `dir` holds train- or t10k- IDX image files (raw or .gz).
bool has_idx_files(const std::filesystem::path& dir);

// Opens the train ("train-*") or test ("t10k-*") split in `dir`. `kind` is "fashion-mnist",
// "mnist" (known class names and statistics) or "idx" (statistics measured from the pixels).
std::shared_ptr<Dataset> open_idx_dataset(const std::filesystem::path& dir, Split split,
                                          const std::string& kind);

// One images file + its labels file, anywhere (e.g. `vitopt-rt eval --images X --labels Y`).
// `kind` and `split_name` as above ("idx": class names 0..9, statistics measured).
std::shared_ptr<Dataset> open_idx_pair(const std::filesystem::path& images_file,
                                       const std::filesystem::path& labels_file,
                                       const std::string& kind = "idx",
                                       const std::string& split_name = "test");

}  // namespace vitopt::data
