// stb wrapper: turns encoded bytes into an Image and back. The implementations live in libstb.so,
// so here we only include the declarations.
#include "data/image_decode.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <climits>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "core/file_util.h"

namespace vitopt::data {
namespace {

constexpr int64_t kMaxImagePixels = int64_t{64} << 20;  // 64 megapixels (8192 x 8192)

void check_decode_size(size_t size, const std::string& name) {
  if (size > static_cast<size_t>(INT_MAX))
    core::throw_input("{}: image file too large for the decoder ({} bytes)", name, size);
}

void check_encodable(const Image& image, const std::filesystem::path& path) {
  const bool channels_ok = image.channels >= 1 && image.channels <= 4;
  const size_t expected = static_cast<size_t>(image.height) * image.width * image.channels;
  if (!channels_ok || image.height <= 0 || image.width <= 0 || image.pixels.size() != expected)
    core::throw_input("{}: cannot encode a {}x{}x{} image holding {} bytes", path.string(),
                      image.height, image.width, image.channels, image.pixels.size());
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
}

}  // namespace

int probe_image_channels(const std::vector<uint8_t>& bytes) {
  if (bytes.empty() || bytes.size() > static_cast<size_t>(INT_MAX)) return 0;
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c)) return 0;
  return c;
}

Image decode_image(const std::vector<uint8_t>& bytes, int channels, const std::string& name) {
  if (channels != 1 && channels != 3)
    core::throw_internal("decode_image: channels must be 1 or 3, got {}", channels);
  check_decode_size(bytes.size(), name);
  int w = 0, h = 0, stored = 0;
  // A header may promise any size; stb then allocates it before reading a pixel (1.5 GB for a
  // 100-byte file, found by fuzz_image_decode). No camera or dataset image comes near the limit.
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &stored) &&
      static_cast<int64_t>(w) * h > kMaxImagePixels)
    core::throw_input("{}: image of {}x{} pixels: more than the {} megapixels vitopt decodes", name,
                      w, h, kMaxImagePixels / (1 << 20));
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &stored,
                            channels),
      stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    core::throw_input("{}: cannot decode image ({})", name, reason ? reason : "unknown error");
  }
  // stb accepts some headers that promise no pixels (a PNM with width 0, found by fuzzing).
  if (w <= 0 || h <= 0) core::throw_input("{}: image has no pixels ({}x{})", name, w, h);
  Image out;
  out.height = h;
  out.width = w;
  out.channels = channels;
  out.pixels.assign(pixels.get(), pixels.get() + static_cast<size_t>(h) * w * channels);
  return out;
}

Image load_image_file(const std::filesystem::path& path, int channels) {
  return decode_image(core::read_file_bytes(path), channels, path.string());
}

void write_png(const std::filesystem::path& path, const Image& image) {
  check_encodable(image, path);
  if (!stbi_write_png(path.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                      image.width * image.channels))
    core::throw_input("{}: cannot write PNG", path.string());
}

void write_jpeg(const std::filesystem::path& path, const Image& image, int quality) {
  check_encodable(image, path);
  if (!stbi_write_jpg(path.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                      quality))
    core::throw_input("{}: cannot write JPEG", path.string());
}

}  // namespace vitopt::data
