// Image transforms on uint8 HWC images. Resizing follows PIL's bilinear filter (what torchvision
// uses on PIL images): a triangle filter widened by the scale when shrinking (antialiasing), which
// for enlarging is exactly bilinear interpolation with align_corners=false. Random choices use raw
// mt19937_64 draws, never std:: distributions, whose output differs between standard libraries.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/eval_transform.h"

namespace vitopt::data {
namespace {

// Output position i of a 1-D resample reads inputs [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

std::vector<Taps> bilinear_taps(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double filter_scale = std::max(scale, 1.0);  // > 1 when shrinking: antialias
  const double support = filter_scale;               // triangle filter: support 1, scaled
  std::vector<Taps> taps(out);
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    // Truncation (not floor) reproduces PIL's window bounds exactly.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in);
    Taps& t = taps[i];
    t.first = lo;
    double total = 0;
    std::vector<double> w;
    for (int x = lo; x < hi; ++x) {
      const double d = std::abs((x - center + 0.5) / filter_scale);
      w.push_back(d < 1.0 ? 1.0 - d : 0.0);
      total += w.back();
    }
    for (double v : w) t.weights.push_back(static_cast<float>(total > 0 ? v / total : 0.0));
  }
  return taps;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

void check_image(const Image& in, const char* what) {
  const size_t expected = static_cast<size_t>(in.height) * in.width * in.channels;
  if (in.height <= 0 || in.width <= 0 || in.channels <= 0 || in.pixels.size() != expected)
    core::throw_input("{}: malformed image {}x{}x{} with {} bytes", what, in.height, in.width,
                      in.channels, in.pixels.size());
}

Image blank(int height, int width, int channels) {
  Image out;
  out.height = height;
  out.width = width;
  out.channels = channels;
  out.pixels.assign(static_cast<size_t>(height) * width * channels, 0);
  return out;
}

// Copies `in` into a (height, width) canvas with in(y, x) landing at (y - top, x - left); pixels
// from outside `in` are zero.
Image shifted_window(const Image& in, int height, int width, int top, int left) {
  Image out = blank(height, width, in.channels);
  const int c = in.channels;
  for (int y = 0; y < height; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= in.height) continue;
    const int x_begin = std::max(0, -left), x_end = std::min(width, in.width - left);
    if (x_begin >= x_end) continue;
    std::copy_n(in.pixels.data() + (static_cast<size_t>(sy) * in.width + x_begin + left) * c,
                static_cast<size_t>(x_end - x_begin) * c,
                out.pixels.data() + (static_cast<size_t>(y) * width + x_begin) * c);
  }
  return out;
}

// torchvision's center offset: round((in - out) / 2) with Python's round-half-to-even; when the
// crop is larger than the image, the image sits at (out - in) // 2 inside zero padding.
int center_offset(int in, int out) {
  if (in < out) return -((out - in) / 2);
  const int d = in - out;
  int off = d / 2;
  if (d % 2 != 0 && off % 2 != 0) ++off;
  return off;
}

}  // namespace

TransformOptions eval_transform(int size, int channels, std::vector<float> mean,
                                std::vector<float> std, float crop_pct) {
  TransformOptions t;
  t.size = size;
  t.channels = channels;
  t.mean = std::move(mean);
  t.std = std::move(std);
  t.crop_pct = crop_pct;
  t.train = false;
  return t;
}

Image resize_bilinear(const Image& in, int height, int width) {
  check_image(in, "resize_bilinear");
  if (height <= 0 || width <= 0)
    core::throw_input("resize_bilinear: target size must be positive, got {}x{}", height, width);
  if (height == in.height && width == in.width) return in;
  const int c = in.channels;
  // Horizontal pass into floats (H_in, W_out, C), then vertical pass with one rounding at the end.
  const std::vector<Taps> tx = bilinear_taps(in.width, width);
  std::vector<float> mid(static_cast<size_t>(in.height) * width * c);
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = in.pixels.data() + static_cast<size_t>(y) * in.width * c;
    float* dst = mid.data() + static_cast<size_t>(y) * width * c;
    for (int x = 0; x < width; ++x) {
      const Taps& t = tx[x];
      for (int ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          acc += t.weights[k] * row[(t.first + k) * c + ch];
        dst[x * c + ch] = acc;
      }
    }
  }
  const std::vector<Taps> ty = bilinear_taps(in.height, height);
  Image out = blank(height, width, c);
  const size_t row_len = static_cast<size_t>(width) * c;
  std::vector<float> acc(row_len);
  for (int y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const Taps& t = ty[y];
    for (size_t k = 0; k < t.weights.size(); ++k) {
      const float* src = mid.data() + (t.first + k) * row_len;
      for (size_t i = 0; i < row_len; ++i) acc[i] += t.weights[k] * src[i];
    }
    uint8_t* dst = out.pixels.data() + y * row_len;
    for (size_t i = 0; i < row_len; ++i) dst[i] = to_byte(acc[i]);
  }
  return out;
}

Image center_crop(const Image& in, int height, int width) {
  check_image(in, "center_crop");
  if (height <= 0 || width <= 0)
    core::throw_input("center_crop: crop size must be positive, got {}x{}", height, width);
  return shifted_window(in, height, width, center_offset(in.height, height),
                        center_offset(in.width, width));
}

Image pad_random_crop(const Image& in, int padding, std::mt19937_64& rng) {
  check_image(in, "pad_random_crop");
  if (padding < 0) core::throw_input("pad_random_crop: padding must be >= 0, got {}", padding);
  if (padding == 0) return in;
  // Top first, then left (as torchvision's RandomCrop draws i then j). The modulo bias is < 1e-17.
  const uint64_t span = 2 * static_cast<uint64_t>(padding) + 1;
  const int top = static_cast<int>(rng() % span) - padding;
  const int left = static_cast<int>(rng() % span) - padding;
  return shifted_window(in, in.height, in.width, top, left);
}

Image horizontal_flip(const Image& in) {
  check_image(in, "horizontal_flip");
  Image out = blank(in.height, in.width, in.channels);
  const int c = in.channels;
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y) * in.width * c;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * in.width * c;
    for (int x = 0; x < in.width; ++x) std::copy_n(src + (in.width - 1 - x) * c, c, dst + x * c);
  }
  return out;
}

Image convert_channels(const Image& in, int channels) {
  check_image(in, "convert_channels");
  if (channels != 1 && channels != 3)
    core::throw_input("convert_channels: expected 1 or 3 output channels, got {}", channels);
  if (in.channels > 4)
    core::throw_input("convert_channels: expected 1-4 input channels, got {}", in.channels);
  if (in.channels == channels) return in;
  Image out = blank(in.height, in.width, channels);
  const size_t n = static_cast<size_t>(in.height) * in.width;
  const int c = in.channels;
  const bool grey_in = c <= 2;  // grey, or grey + alpha (alpha is dropped)
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = in.pixels.data() + i * c;
    if (channels == 3) {
      const bool rgb = !grey_in;
      for (int ch = 0; ch < 3; ++ch) out.pixels[i * 3 + ch] = rgb ? p[ch] : p[0];
    } else if (grey_in) {
      out.pixels[i] = p[0];
    } else {
      // ITU-R 601-2 luma in PIL's fixed point, so "L" conversion matches PIL's convert("L").
      out.pixels[i] =
          static_cast<uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
  }
  return out;
}

void apply_transform(const Image& in, const TransformOptions& options, std::mt19937_64& rng,
                     float* out) {
  const int size = options.size, channels = options.channels;
  if (size <= 0) core::throw_input("transform: size must be positive, got {}", size);
  const auto stats_ok = [&](const std::vector<float>& v) {
    return v.size() == 1 || v.size() == static_cast<size_t>(channels);
  };
  if (!stats_ok(options.mean) || !stats_ok(options.std))
    core::throw_input("transform: mean/std need 1 or {} values, got {} and {}", channels,
                      options.mean.size(), options.std.size());
  Image img = convert_channels(in, channels);

  if (options.train) {
    if (img.height != size || img.width != size) img = resize_bilinear(img, size, size);
    if (options.random_crop_padding > 0)
      img = pad_random_crop(img, options.random_crop_padding, rng);
    // Drawn only when flipping is on, so turning it off does not shift later draws' meaning.
    if (options.horizontal_flip && (rng() >> 63) != 0) img = horizontal_flip(img);
  } else if (options.crop_pct > 0.0f && options.crop_pct < 1.0f) {
    // timm's eval: shorter side to floor(size / crop_pct), aspect kept, then center crop.
    const int scaled = static_cast<int>(std::floor(size / options.crop_pct));
    const int h = img.height <= img.width
                      ? scaled
                      : static_cast<int>(static_cast<int64_t>(scaled) * img.height / img.width);
    const int w = img.width <= img.height
                      ? scaled
                      : static_cast<int>(static_cast<int64_t>(scaled) * img.width / img.height);
    img = center_crop(resize_bilinear(img, h, w), size, size);
  } else if (img.height != size || img.width != size) {
    img = resize_bilinear(img, size, size);
  }

  // (H, W, C) bytes -> (C, H, W) floats: (p / 255 - mean) / std.
  const size_t plane = static_cast<size_t>(size) * size;
  for (int c = 0; c < channels; ++c) {
    const float mean = options.mean[options.mean.size() == 1 ? 0 : c];
    const float sd = options.std[options.std.size() == 1 ? 0 : c];
    if (sd == 0.0f) core::throw_input("transform: std of channel {} is 0", c);
    const float scale = 1.0f / (255.0f * sd), bias = -mean / sd;
    float* dst = out + c * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = img.pixels[i * channels + c] * scale + bias;
  }
}

}  // namespace vitopt::data
