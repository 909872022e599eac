// ImageFolder and Tiny-ImageNet: generated PNG/JPEG trees read back with sorted classes, exact
// PNG pixels, lazy decoding errors naming the file, and the val_annotations.txt layout.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "data/image_decode.h"
#include "data/image_folder_dataset.h"
#include "data_test_util.h"
#include "test_util.h"

namespace vitopt::data {
namespace {

using testing::expect_input_error;
using testing::make_image;
using testing::TempDir;
using testing::write_bytes;

Image pattern(int seed, int h = 6, int w = 5, int c = 3) {
  return make_image(h, w, c, [&](int y, int x, int ch) { return seed * 40 + y * 9 + x * 3 + ch; });
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  write_bytes(p, std::vector<uint8_t>(text.begin(), text.end()));
}

// A PGM header with width 0 decodes in stb to an empty image; found by fuzz_image_decode (its
// corpus keeps the file as pnm_zero_width).
TEST(ImageDecode, HeaderWithoutPixelsIsBadInput) {
  const std::vector<uint8_t> bytes = {
      0x50, 0x35, 0x0a, 0x00, 0x28, 0x50, 0x78, 0xa0, 0xc8, 0x96, 0xbe, 0xe6, 0x28,
      0x50, 0x78, 0xa0, 0xc8, 0xf0, 0xbe, 0xe6, 0x28, 0x50, 0x78, 0xa0, 0xc8, 0xf0,
  };
  expect_input_error([&] { decode_image(bytes, 1, "zero.pgm"); }, {"zero.pgm", "no pixels"});
}

// 22 bytes whose header promises a huge image: stb would allocate 1.2 GB before reading a pixel.
// Found by fuzz_image_decode (its corpus keeps the input as huge_header: a channel byte, then
// these).
TEST(ImageDecode, HeaderPromisingAHugeImageIsBadInput) {
  // stb reads a header of 15873 x 24576 pixels (390 megapixels) from these bytes.
  const std::vector<uint8_t> bytes = {0x00, 0x00, 0x03, 0x01, 0x3e, 0x00, 0x60, 0x20,
                                      0x01, 0x00, 0x00, 0x03, 0x01, 0x3e, 0x00, 0x60,
                                      0x20, 0x00, 0x00, 0x00, 0x00, 0x38};
  expect_input_error([&] { decode_image(bytes, 3, "huge.img"); }, {"huge.img", "megapixels"});
}

TEST(ImageFolder, TrainValSplitsWithSortedClasses) {
  TempDir dir;
  // Written out of order: labels must follow sorted folder names (cat = 0, dog = 1).
  write_png(dir / "train/dog/b.png", pattern(3));
  write_png(dir / "train/dog/a.png", pattern(2));
  write_png(dir / "train/cat/x.PNG", pattern(1));
  write_png(dir / "val/dog/v.png", pattern(4));
  const DatasetSpec spec = parse_dataset_spec(dir.path().string());
  EXPECT_EQ(spec.kind, "imagefolder");
  auto train = open_dataset(spec, Split::Train);
  ASSERT_EQ(train->size(), 3u);
  EXPECT_EQ(train->num_classes(), 2);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->native_size(), 0);
  EXPECT_EQ(train->label(0), 0);
  EXPECT_EQ(train->label(1), 1);
  EXPECT_EQ(train->image(0).pixels, pattern(1).pixels);
  EXPECT_EQ(train->image(1).pixels, pattern(2).pixels);  // a.png before b.png
  EXPECT_EQ(train->image(2).pixels, pattern(3).pixels);
  EXPECT_EQ(train->image(2).height, 6);
  // The val split has only dog/, yet dog keeps label 1 from the train classes.
  auto val = open_dataset(spec, Split::Test);
  ASSERT_EQ(val->size(), 1u);
  EXPECT_EQ(val->label(0), 1);
  EXPECT_EQ(val->image(0).pixels, pattern(4).pixels);
  EXPECT_FLOAT_EQ(val->default_mean().at(1), 0.456f);
}

TEST(ImageFolder, GreyFolderWithoutSplitsHoldsOutADisjointTestSplit) {
  TempDir dir;
  // 40 images in two classes, image k has first pixel k (unique); one RGB among grey is converted.
  auto tagged = [](int k, int c) {
    return make_image(4, 4, c, [k](int y, int x, int) { return y == 0 && x == 0 ? k : 7; });
  };
  for (int i = 0; i < 20; ++i) {
    write_png(dir / fmt::format("0/a{:02}.png", i), tagged(i, 1));
    write_png(dir / fmt::format("1/b{:02}.png", i), tagged(20 + i, i == 7 ? 3 : 1));
  }
  auto test = open_image_folder(dir.path(), Split::Test);
  auto train = open_image_folder(dir.path(), Split::Train);
  EXPECT_EQ(train->size() + test->size(), 40u);
  EXPECT_GE(test->size(), 2u);  // about 20% (8 expected); the exact count is fixed by the hash
  EXPECT_LE(test->size(), 16u);
  EXPECT_EQ(test->channels(), 1);
  EXPECT_EQ(train->channels(), 1);
  EXPECT_NE(test->description().find("held out"), std::string::npos) << test->description();
  EXPECT_NE(train->description().find("held out"), std::string::npos) << train->description();
  // Disjoint and complete: every image is in exactly one split.
  std::set<int> seen;
  for (auto* ds : {train.get(), test.get()})
    for (size_t i = 0; i < ds->size(); ++i) {
      const int k = ds->image(i).pixels[0];
      EXPECT_TRUE(seen.insert(k).second) << "image " << k << " is in both splits";
      EXPECT_EQ(ds->label(i), k < 20 ? 0 : 1);
    }
  EXPECT_EQ(seen.size(), 40u);
  // Deterministic: the same folder copied elsewhere splits identically (relative paths only).
  TempDir copy;
  std::filesystem::copy(dir.path(), copy.path(), std::filesystem::copy_options::recursive);
  auto test2 = open_image_folder(copy.path(), Split::Test);
  ASSERT_EQ(test2->size(), test->size());
  for (size_t i = 0; i < test->size(); ++i)
    EXPECT_EQ(test2->image(i).pixels[0], test->image(i).pixels[0]);
}

TEST(ImageFolder, TinyFolderWithoutSplitsStillHoldsOutOneImage) {
  TempDir dir;
  write_png(dir / "0/a.png", pattern(1, 4, 4, 1));
  write_png(dir / "1/a.png", pattern(2, 4, 4, 1));
  auto test = open_image_folder(dir.path(), Split::Test);
  auto train = open_image_folder(dir.path(), Split::Train);
  EXPECT_GE(test->size(), 1u);
  EXPECT_EQ(train->size() + test->size(), 2u);
  TempDir one;
  write_png(one / "0/a.png", pattern(1, 4, 4, 1));
  EXPECT_EQ(open_image_folder(one.path(), Split::Test)->size(), 1u);
  expect_input_error([&] { open_image_folder(one.path(), Split::Train); }, {"held out"});
}

TEST(ImageFolder, JpegDecodesCloseToOriginal) {
  TempDir dir;
  const Image flat = make_image(16, 16, 3, [](int, int, int c) { return 60 + c * 70; });
  write_jpeg(dir / "train/k/a.jpg", flat, 95);
  write_jpeg(dir / "train/k/b.jpeg", flat, 95);
  auto ds = open_image_folder(dir.path(), Split::Train);
  ASSERT_EQ(ds->size(), 2u);
  const Image img = ds->image(1);
  ASSERT_EQ(img.pixels.size(), flat.pixels.size());
  for (size_t i = 0; i < img.pixels.size(); ++i)
    ASSERT_NEAR(img.pixels[i], flat.pixels[i], 4) << "byte " << i;
}

TEST(ImageFolder, UndecodableFileErrorNamesFileAndSample) {
  TempDir dir;
  write_png(dir / "train/c/a.png", pattern(1));
  write_text(dir / "train/c/b.png", "this is not a png");
  auto ds = open_image_folder(dir.path(), Split::Train);
  expect_input_error([&] { ds->image(1); }, {(dir / "train/c/b.png").string(), "sample 1"});
}

TEST(ImageFolder, MissingSplitAndStrayClassAreErrors) {
  TempDir dir;
  write_png(dir / "train/a/x.png", pattern(1));
  expect_input_error([&] { open_image_folder(dir.path(), Split::Test); }, {"val/ or test/"});
  write_png(dir / "test/zebra/x.png", pattern(1));
  expect_input_error([&] { open_image_folder(dir.path(), Split::Test); }, {"zebra"});
}

TEST(TinyImageNet, TrainAndValAnnotations) {
  TempDir dir;
  write_text(dir / "wnids.txt", "n02\nn01\n");
  write_text(dir / "words.txt", "n01\tgoldfish, Carassius auratus\nn02\tbullfrog\nn99\tother\n");
  write_jpeg(dir / "train/n01/images/n01_0.JPEG", pattern(0, 64, 64, 3));
  write_jpeg(dir / "train/n02/images/n02_0.JPEG", pattern(1, 64, 64, 3));
  write_jpeg(dir / "train/n02/images/n02_1.JPEG", pattern(2, 64, 64, 1));  // a grey one
  write_text(dir / "train/n02/n02_boxes.txt", "n02_0.JPEG\t0\t0\t10\t10\n");
  write_jpeg(dir / "val/images/val_0.JPEG", pattern(3, 64, 64, 3));
  write_jpeg(dir / "val/images/val_1.JPEG", pattern(4, 64, 64, 3));
  write_text(dir / "val/val_annotations.txt",
             "val_0.JPEG\tn02\t0\t0\t63\t63\nval_1.JPEG\tn01\t1\t2\t3\t4\n");
  const DatasetSpec spec = parse_dataset_spec(dir.path().string());
  EXPECT_EQ(spec.kind, "tiny-imagenet");
  auto train = open_dataset(spec, Split::Train);
  ASSERT_EQ(train->size(), 3u);
  EXPECT_EQ(train->native_size(), 64);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->class_names(),
            (std::vector<std::string>{"goldfish, Carassius auratus", "bullfrog"}));
  EXPECT_EQ(train->label(0), 0);
  EXPECT_EQ(train->label(2), 1);
  const Image grey = train->image(2);
  EXPECT_EQ(grey.channels, 3);
  EXPECT_EQ(grey.pixels[0], grey.pixels[1]);
  auto val = open_dataset(spec, Split::Test);
  ASSERT_EQ(val->size(), 2u);
  EXPECT_EQ(val->label(0), 1);
  EXPECT_EQ(val->label(1), 0);
  EXPECT_EQ(val->image(1).height, 64);

  write_text(dir / "val/val_annotations.txt", "val_0.JPEG\tn02\nval_1.JPEG\tn77\n");
  expect_input_error([&] { open_tiny_imagenet(dir.path(), Split::Test); },
                     {(dir / "val/val_annotations.txt").string(), "line 2"});
}

}  // namespace
}  // namespace vitopt::data
