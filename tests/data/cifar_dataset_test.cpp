// CIFAR-10/100 binary readers: CHW records come back as exact HWC pixels with the right (fine)
// labels; short files, bad labels and missing batches are errors naming the file.
#include "data/cifar_dataset.h"

#include <gtest/gtest.h>

#include "data_test_util.h"
#include "test_util.h"

namespace vitopt::data {
namespace {

using testing::expect_input_error;
using testing::TempDir;
using testing::write_bytes;

// Pixel (channel c, plane position p) of record `r` in file `f`.
uint8_t pixel(int f, int r, int c, int p) {
  return static_cast<uint8_t>(f * 31 + r * 7 + c * 50 + p);
}

// Records of label bytes + 3072 CHW pixels.
std::vector<uint8_t> records(int file, const std::vector<std::vector<uint8_t>>& labels) {
  std::vector<uint8_t> out;
  for (size_t r = 0; r < labels.size(); ++r) {
    out.insert(out.end(), labels[r].begin(), labels[r].end());
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) out.push_back(pixel(file, static_cast<int>(r), c, p));
  }
  return out;
}

// cifar-10-batches-bin/ with 5 train batches of 2 records and a test batch of 3.
std::filesystem::path write_cifar10(const TempDir& dir) {
  const auto root = dir / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b)
    write_bytes(root / ("data_batch_" + std::to_string(b) + ".bin"),
                records(b, {{static_cast<uint8_t>(b)}, {static_cast<uint8_t>(9 - b)}}));
  write_bytes(root / "test_batch.bin", records(0, {{4}, {0}, {9}}));
  const std::string names =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  write_bytes(root / "batches.meta.txt", std::vector<uint8_t>(names.begin(), names.end()));
  return root;
}

TEST(CifarDataset, Cifar10PixelsAndLabelsExact) {
  TempDir dir;
  write_cifar10(dir);
  const DatasetSpec spec = parse_dataset_spec(dir.path().string());  // parent of the batches dir
  EXPECT_EQ(spec.kind, "cifar10");
  auto train = open_dataset(spec, Split::Train);
  ASSERT_EQ(train->size(), 10u);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->native_size(), 32);
  EXPECT_EQ(train->class_names().at(3), "cat");
  for (int b = 1; b <= 5; ++b) {
    for (int r = 0; r < 2; ++r) {
      const size_t i = static_cast<size_t>((b - 1) * 2 + r);
      EXPECT_EQ(train->label(i), r == 0 ? b : 9 - b);
      const Image img = train->image(i);
      ASSERT_EQ(img.pixels.size(), 3072u);
      for (int p : {0, 1, 33, 1023})
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(img.pixels[p * 3 + c], pixel(b, r, c, p)) << "sample " << i;
    }
  }
  auto test = open_dataset(parse_dataset_spec("cifar10:" + dir.path().string()), Split::Test);
  ASSERT_EQ(test->size(), 3u);
  EXPECT_EQ(test->label(2), 9);
  EXPECT_EQ(test->image(1).pixels[5 * 3 + 2], pixel(0, 1, 2, 5));
  EXPECT_FLOAT_EQ(test->default_mean().at(0), 0.4914f);
}

TEST(CifarDataset, Cifar100UsesFineLabels) {
  TempDir dir;
  write_bytes(dir / "train.bin", records(1, {{2, 57}, {19, 99}}));
  write_bytes(dir / "test.bin", records(2, {{0, 5}}));
  const std::string names = "apple\naquarium_fish\n";  // incomplete: numbered names instead
  write_bytes(dir / "fine_label_names.txt", std::vector<uint8_t>(names.begin(), names.end()));
  EXPECT_EQ(parse_dataset_spec(dir.path().string()).kind, "cifar100");
  auto train = open_cifar_dataset(dir.path(), Split::Train, 100);
  ASSERT_EQ(train->size(), 2u);
  EXPECT_EQ(train->num_classes(), 100);
  EXPECT_EQ(train->label(0), 57);
  EXPECT_EQ(train->label(1), 99);
  EXPECT_EQ(train->image(1).pixels[1023 * 3 + 1], pixel(1, 1, 1, 1023));
  EXPECT_EQ(train->class_names().size(), 100u);
  EXPECT_FLOAT_EQ(train->default_std().at(2), 0.2762f);
  EXPECT_EQ(open_cifar_dataset(dir.path(), Split::Test, 100)->label(0), 5);
}

TEST(CifarDataset, TruncatedFileNamesFileAndRecordSize) {
  TempDir dir;
  const auto root = write_cifar10(dir);
  auto bytes = records(0, {{1}, {2}});
  bytes.resize(bytes.size() - 100);
  write_bytes(root / "test_batch.bin", bytes);
  expect_input_error([&] { open_cifar_dataset(dir.path(), Split::Test, 10); },
                     {(root / "test_batch.bin").string(), "3073", "6046"});
}

TEST(CifarDataset, LabelOutOfRangeAndMissingBatch) {
  TempDir dir;
  const auto root = write_cifar10(dir);
  write_bytes(root / "test_batch.bin", records(0, {{1}, {10}}));
  expect_input_error([&] { open_cifar_dataset(root, Split::Test, 10); },
                     {(root / "test_batch.bin").string(), "label 10", "record 1"});
  std::filesystem::remove(root / "data_batch_3.bin");
  expect_input_error([&] { open_cifar_dataset(root, Split::Train, 10); },
                     {(root / "data_batch_3.bin").string(), "missing"});
}

}  // namespace
}  // namespace vitopt::data
