// libFuzzer target for image decoding (stb through data/image_decode): any byte string must decode
// to an image of the requested channels with a consistent pixel count, or throw core::Error.
// Byte 0 picks the channels (even: 1, odd: 3); the rest is the encoded file. Seeds in
// corpus/fuzz_image_decode; VITOPT_FUZZ_WRITE_SEEDS=DIR writes the JPEG ones (grey, RGB) there.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "data/image_decode.h"

namespace {

// A small image through stb's JPEG encoder, saved with the channel-selector byte in front.
void write_jpeg_seed(const std::filesystem::path& dir, int channels, const char* name) {
  vitopt::data::Image img;
  img.height = 5;
  img.width = 6;
  img.channels = channels;
  for (int i = 0; i < 5 * 6 * channels; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 23));
  const auto tmp = dir / (std::string(name) + ".jpg");
  vitopt::data::write_jpeg(tmp, img, 90);
  std::ifstream in(tmp, std::ios::binary);
  std::ofstream out(dir / name, std::ios::binary);
  out.put(channels == 3 ? 1 : 0);
  out << in.rdbuf();
  std::filesystem::remove(tmp);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("VITOPT_FUZZ_WRITE_SEEDS")) {
    std::filesystem::create_directories(dir);
    write_jpeg_seed(dir, 1, "jpg_grey");
    write_jpeg_seed(dir, 3, "jpg_rgb");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int channels = (data[0] & 1) != 0 ? 3 : 1;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  (void)vitopt::data::probe_image_channels(bytes);
  try {
    const auto image = vitopt::data::decode_image(bytes, channels, "fuzz-image");
    const size_t expected = static_cast<size_t>(image.height) * static_cast<size_t>(image.width) *
                            static_cast<size_t>(image.channels);
    if (image.channels != channels || image.pixels.size() != expected || expected == 0)
      __builtin_trap();  // a decoded image must be what the header promises
  } catch (const vitopt::core::Error&) {
  }
  return 0;
}
