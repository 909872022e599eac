// File generators shared by the data tests: tiny IDX files (raw or gzipped) and images with
// known pixels, so every reader is checked against values written a line above.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "data/dataset.h"

namespace vitopt::testing {

// Big-endian IDX: magic, dims, bytes.
inline std::vector<uint8_t> idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size())) + 64;
  std::vector<uint8_t> out(size);
  z_stream zs{};
  // windowBits 15 + 16: gzip wrapper, as the .gz files of MNIST have.
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  core::write_file_atomic(path, bytes.data(), bytes.size());
}

// (height, width, channels) image with pixel(y, x, c) = f(y, x, c).
inline data::Image make_image(int h, int w, int c, const std::function<int(int, int, int)>& f) {
  data::Image img;
  img.height = h;
  img.width = w;
  img.channels = c;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch) img.pixels.push_back(static_cast<uint8_t>(f(y, x, ch)));
  return img;
}

// Runs `f`, expecting an InputError whose message contains every string of `parts`.
template <typename F>
void expect_input_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no InputError";
  } catch (const core::InputError& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message '" << e.what() << "' lacks '" << part << "'";
  }
}

}  // namespace vitopt::testing
