// PNG/JPEG/BMP decoding and PNG/JPEG encoding through stb (Debian's libstb.so). Decoding is
// thread-safe (stb keeps its failure reason thread-local); encoding exists for tests and tools
// that generate image folders.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace vitopt::data {

// Channels stored in an encoded image (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), 0 if unreadable.
int probe_image_channels(const std::vector<uint8_t>& bytes);

// Decodes to `channels` channels (1 or 3; stb converts). `name` is used in the error message.
Image decode_image(const std::vector<uint8_t>& bytes, int channels, const std::string& name);
Image load_image_file(const std::filesystem::path& path, int channels);

// Writes `image` (1 or 3 channels). JPEG quality 1..100. Throws InputError naming the path.
void write_png(const std::filesystem::path& path, const Image& image);
void write_jpeg(const std::filesystem::path& path, const Image& image, int quality = 95);

}  // namespace vitopt::data
