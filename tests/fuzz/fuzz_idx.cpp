// libFuzzer target for the IDX reader (MNIST layout): the input becomes an images file and a
// labels file (raw or gzipped) opened as a dataset, then every sample is read. Must open or throw
// core::Error; never crash or read out of bounds. Input layout: byte 0 bit 0 = gzip names,
// bytes 1-2 = length of the labels part (little endian), then labels bytes, then images bytes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/idx_dataset.h"

namespace {

std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("vitopt-fuzz-idx-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void write(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const bool gz = (data[0] & 1) != 0;
  const size_t label_bytes = std::min<size_t>(size - 3, size_t{data[1]} | size_t{data[2]} << 8);
  const std::string ext = gz ? ".gz" : "";
  const auto images = scratch_dir() / ("images" + ext);
  const auto labels = scratch_dir() / ("labels" + ext);
  write(labels, data + 3, label_bytes);
  write(images, data + 3 + label_bytes, size - 3 - label_bytes);
  try {
    const auto dataset = vitopt::data::open_idx_pair(images, labels);
    volatile int sink = 0;
    for (size_t i = 0; i < dataset->size(); ++i) {
      const auto image = dataset->image(i);
      sink = sink + dataset->label(i) + image.pixels.front() + image.pixels.back();
    }
  } catch (const vitopt::core::Error&) {
  }
  return 0;
}
