// Transforms against hand-computed values: bilinear resize (align_corners=false when enlarging,
// PIL's antialiasing triangle when shrinking), crops, flips, channel conversion, normalization.
#include "data/transforms.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "data_test_util.h"

namespace vitopt::data {
namespace {

using testing::make_image;

Image grey(int h, int w, std::vector<int> values) {
  return make_image(h, w, 1, [&](int y, int x, int) { return values[y * w + x]; });
}

std::vector<int> as_ints(const Image& img) { return {img.pixels.begin(), img.pixels.end()}; }

TEST(Resize, Enlarge2x2MatchesHandComputedBilinear) {
  // Source coordinate of output i is (i + 0.5) / 2 - 0.5, clamped to [0, 1]:
  // -0.25 -> 0, 0.25 -> 0.75a + 0.25b, 0.75 -> 0.25a + 0.75b, 1.25 -> b.
  const Image out = resize_bilinear(grey(2, 2, {0, 100, 200, 255}), 4, 4);
  ASSERT_EQ(out.height, 4);
  ASSERT_EQ(out.width, 4);
  EXPECT_EQ(as_ints(out), (std::vector<int>{0, 25, 75, 100,         //
                                            50, 72, 117, 139,       // 72.19 116.56 138.75
                                            150, 167, 200, 216,     // 166.56 199.69 216.25
                                            200, 214, 241, 255}));  // 213.75 241.25
}

TEST(Resize, ShrinkUsesAntialiasedTriangle) {
  // Halving: output 0 is centred on input 1.0 with support 2 -> weights 3/7, 3/7, 1/7 on inputs
  // 0, 1, 2; output 1 (centre 3.0) -> 1/7, 3/7, 3/7 on inputs 1, 2, 3.
  const Image out = resize_bilinear(grey(1, 4, {0, 70, 140, 210}), 1, 2);
  EXPECT_EQ(as_ints(out), (std::vector<int>{50, 160}));
  // A constant image stays constant at any size, per channel.
  const Image flat = make_image(7, 9, 3, [](int, int, int c) { return 10 + 100 * c; });
  const Image r = resize_bilinear(flat, 3, 13);
  for (size_t i = 0; i < r.pixels.size(); ++i) ASSERT_EQ(r.pixels[i], 10 + 100 * (i % 3));
  EXPECT_EQ(resize_bilinear(flat, 7, 9).pixels, flat.pixels);
}

TEST(CenterCrop, OffsetsLikeTorchvision) {
  const Image img = grey(5, 5, {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24});
  EXPECT_EQ(as_ints(center_crop(img, 3, 3)), (std::vector<int>{6, 7, 8, 11, 12, 13, 16, 17, 18}));
  // (5 - 4) / 2 = 0.5 rounds half to even -> offset 0 (Python's round, as torchvision).
  EXPECT_EQ(as_ints(center_crop(img, 4, 1)), (std::vector<int>{2, 7, 12, 17}));
  EXPECT_EQ(as_ints(center_crop(img, 2, 2)), (std::vector<int>{12, 13, 17, 18}));  // round(1.5)=2
  // Larger than the image: zero padding with the image at (7 - 5) // 2 = 1.
  const Image big = center_crop(img, 7, 7);
  EXPECT_EQ(big.pixels[0], 0);
  EXPECT_EQ(big.pixels[1 * 7 + 2], 1);  // image (0, 1)
  EXPECT_EQ(big.pixels[3 * 7 + 3], 12);
  EXPECT_EQ(big.pixels[5 * 7 + 5], 24);
  EXPECT_EQ(big.pixels[6 * 7 + 6], 0);
}

TEST(Flip, MirrorsColumnsKeepingChannels) {
  const Image img = make_image(2, 3, 2, [](int y, int x, int c) { return y * 100 + x * 10 + c; });
  const Image f = horizontal_flip(img);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 2; ++c)
        EXPECT_EQ(f.pixels[(y * 3 + x) * 2 + c], y * 100 + (2 - x) * 10 + c);
  EXPECT_EQ(horizontal_flip(f).pixels, img.pixels);
}

TEST(PadRandomCrop, IsAZeroFilledShiftWithinPadding) {
  const Image img = make_image(6, 6, 1, [](int y, int x, int) { return 1 + y * 6 + x; });
  std::set<std::pair<int, int>> shifts;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    const Image out = pad_random_crop(img, 2, rng);
    std::mt19937_64 again(seed);
    ASSERT_EQ(pad_random_crop(img, 2, again).pixels, out.pixels);  // a function of the rng
    int matches = 0;
    for (int dy = -2; dy <= 2; ++dy) {
      for (int dx = -2; dx <= 2; ++dx) {
        bool same = true;
        for (int y = 0; y < 6 && same; ++y)
          for (int x = 0; x < 6 && same; ++x) {
            const int sy = y + dy, sx = x + dx;
            const int want = (sy < 0 || sy >= 6 || sx < 0 || sx >= 6) ? 0 : img.pixels[sy * 6 + sx];
            same = out.pixels[y * 6 + x] == want;
          }
        if (same) {
          ++matches;
          shifts.insert({dy, dx});
        }
      }
    }
    ASSERT_EQ(matches, 1) << "seed " << seed;
  }
  EXPECT_EQ(shifts.size(), 25u);  // every shift in [-2, 2]^2 occurs
}

TEST(ConvertChannels, GreyToRgbAndPilLuma) {
  const Image g = grey(1, 2, {7, 200});
  EXPECT_EQ(as_ints(convert_channels(g, 3)), (std::vector<int>{7, 7, 7, 200, 200, 200}));
  const Image rgb =
      make_image(1, 4, 3, [](int, int x, int c) { return x == 3 ? 255 : (c == x ? 255 : 0); });
  // PIL convert("L"): (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
  EXPECT_EQ(as_ints(convert_channels(rgb, 1)), (std::vector<int>{76, 150, 29, 255}));
  EXPECT_EQ(convert_channels(rgb, 3).pixels, rgb.pixels);
}

TEST(ApplyTransform, NormalizesToChw) {
  const Image img = make_image(2, 2, 3, [](int y, int x, int c) { return 50 * c + 10 * y + x; });
  TransformOptions opt;
  opt.size = 2;
  opt.channels = 3;
  opt.mean = {0.1f, 0.2f, 0.3f};
  opt.std = {0.5f, 0.25f, 2.0f};
  std::mt19937_64 rng(0);
  std::vector<float> out(12);
  apply_transform(img, opt, rng, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) {
        const float p = (50.0f * c + 10 * y + x) / 255.0f;
        EXPECT_NEAR(out[(c * 2 + y) * 2 + x], (p - opt.mean[c]) / opt.std[c], 1e-5);
      }
  opt.mean = {0.1f, 0.2f};
  EXPECT_THROW(apply_transform(img, opt, rng, out.data()), core::InputError);
}

TEST(ApplyTransform, EvalCropPctAndGreyToRgb) {
  const Image img = make_image(28, 28, 1, [](int y, int x, int) { return (y * 28 + x) % 251; });
  TransformOptions opt;
  opt.size = 28;
  opt.channels = 3;
  opt.mean = {0.0f};
  opt.std = {1.0f};
  opt.crop_pct = 0.875f;  // floor(28 / 0.875) = 32, then the centre 28x28
  std::mt19937_64 rng(0);
  std::vector<float> out(3 * 28 * 28);
  apply_transform(img, opt, rng, out.data());
  const Image want = center_crop(resize_bilinear(img, 32, 32), 28, 28);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 28 * 28; ++i)
      ASSERT_FLOAT_EQ(out[c * 784 + i], want.pixels[i] / 255.0f) << "c " << c << " i " << i;

  // Non-square input with crop_pct 1: plain resize to size x size.
  const Image wide = grey(2, 4, {0, 0, 255, 255, 0, 0, 255, 255});
  opt.size = 2;
  opt.channels = 1;
  opt.crop_pct = 1.0f;
  std::vector<float> small(4);
  apply_transform(wide, opt, rng, small.data());
  const Image r = resize_bilinear(wide, 2, 2);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(small[i], r.pixels[i] / 255.0f);
}

TEST(ApplyTransform, TrainFlipIsAFairCoinFromTheRng) {
  const Image img = make_image(1, 2, 1, [](int, int x, int) { return x * 255; });
  TransformOptions opt;
  opt.size = 2;
  opt.channels = 1;
  opt.mean = {0.0f};
  opt.std = {1.0f};
  opt.train = true;
  opt.horizontal_flip = true;
  int flipped = 0;
  std::vector<float> out(4);  // (1, 2, 2)
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 rng(seed);
    // size 2 from a 1x2 image: resized first, so compare the left/right order only.
    apply_transform(img, opt, rng, out.data());
    flipped += out[0] > out[1];
  }
  EXPECT_GT(flipped, 150);
  EXPECT_LT(flipped, 250);
}

}  // namespace
}  // namespace vitopt::data
