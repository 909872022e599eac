// libFuzzer target for the CIFAR binary reader: the input becomes the test batch of CIFAR-10
// (byte 0 even) or CIFAR-100 (odd) plus an optional class-names file, opened as a dataset, then
// every sample is read. Must open or throw core::Error; never crash or read out of bounds.
// Input layout: byte 0 = variant, byte 1 = length of the names part, then names, then records.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/cifar_dataset.h"

namespace {

std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("vitopt-fuzz-cifar-" + std::to_string(::getpid()));
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
  if (size < 2) return 0;
  const int classes = (data[0] & 1) != 0 ? 100 : 10;
  const size_t name_bytes = std::min<size_t>(size - 2, data[1]);
  const auto dir = scratch_dir();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write(dir / (classes == 100 ? "fine_label_names.txt" : "batches.meta.txt"), data + 2, name_bytes);
  write(dir / (classes == 100 ? "test.bin" : "test_batch.bin"), data + 2 + name_bytes,
        size - 2 - name_bytes);
  try {
    const auto dataset = vitopt::data::open_cifar_dataset(dir, vitopt::data::Split::Test, classes);
    volatile int sink = 0;
    for (size_t i = 0; i < dataset->size(); ++i) {
      const auto image = dataset->image(i);
      sink = sink + dataset->label(i) + image.pixels.front() + image.pixels.back();
    }
    sink = sink + static_cast<int>(dataset->class_names().size());
  } catch (const vitopt::core::Error&) {
  }
  return 0;
}
