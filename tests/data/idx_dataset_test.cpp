// IDX reader: exact round trips (raw and gzipped), every validation error naming its file, and
// the real Fashion-MNIST test split when it is installed.
#include "data/idx_dataset.h"

#include <gtest/gtest.h>

#include <array>

#include "core/error.h"
#include "data_test_util.h"
#include "test_util.h"

namespace vitopt::data {
namespace {

using testing::expect_input_error;
using testing::gzip_bytes;
using testing::idx_bytes;
using testing::TempDir;
using testing::write_bytes;

constexpr uint32_t kN = 3, kRows = 4, kCols = 5;

std::vector<uint8_t> test_pixels() {
  std::vector<uint8_t> px;
  for (uint32_t i = 0; i < kN * kRows * kCols; ++i) px.push_back(static_cast<uint8_t>(i * 7 + 1));
  return px;
}

// Writes <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz] into `dir`.
void write_split(const std::filesystem::path& dir, const std::string& prefix, bool gz,
                 std::vector<uint8_t> labels = {3, 0, 9}) {
  auto images = idx_bytes(kIdxImagesMagic, {kN, kRows, kCols}, test_pixels());
  auto label_file = idx_bytes(kIdxLabelsMagic, {static_cast<uint32_t>(labels.size())}, labels);
  const std::string ext = gz ? ".gz" : "";
  write_bytes(dir / (prefix + "-images-idx3-ubyte" + ext), gz ? gzip_bytes(images) : images);
  write_bytes(dir / (prefix + "-labels-idx1-ubyte" + ext),
              gz ? gzip_bytes(label_file) : label_file);
}

void expect_contents(const Dataset& ds) {
  ASSERT_EQ(ds.size(), kN);
  EXPECT_EQ(ds.channels(), 1);
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.native_size(), 0);  // 4x5 is not square
  const auto px = test_pixels();
  const std::array<int, kN> labels = {3, 0, 9};
  for (size_t i = 0; i < kN; ++i) {
    const Image img = ds.image(i);
    EXPECT_EQ(img.height, static_cast<int>(kRows));
    EXPECT_EQ(img.width, static_cast<int>(kCols));
    ASSERT_EQ(img.pixels.size(), kRows * kCols);
    for (size_t p = 0; p < img.pixels.size(); ++p)
      ASSERT_EQ(img.pixels[p], px[i * kRows * kCols + p]) << "sample " << i << " pixel " << p;
    EXPECT_EQ(ds.label(i), labels[i]);
  }
}

TEST(IdxDataset, RawFilesReadBackExactly) {
  TempDir dir;
  write_split(dir.path(), "train", false);
  expect_contents(*open_idx_dataset(dir.path(), Split::Train, "idx"));
}

TEST(IdxDataset, GzippedFilesReadBackExactly) {
  TempDir dir;
  write_split(dir.path(), "t10k", true);
  auto ds = open_idx_dataset(dir.path(), Split::Test, "idx");
  expect_contents(*ds);
  EXPECT_NE(ds->description().find("test (3 images"), std::string::npos) << ds->description();
}

TEST(IdxDataset, DetectedFromFolderNameAndOpenedThroughFactory) {
  TempDir dir;
  const auto root = dir / "my-fashion-mnist";
  write_split(root, "train", true);
  const DatasetSpec spec = parse_dataset_spec(root.string());
  EXPECT_EQ(spec.kind, "fashion-mnist");
  auto ds = open_dataset(spec, Split::Train);
  expect_contents(*ds);
  EXPECT_EQ(ds->class_names().at(0), "T-shirt/top");
  EXPECT_FLOAT_EQ(ds->default_mean().at(0), 0.2860f);
  EXPECT_FLOAT_EQ(ds->default_std().at(0), 0.3530f);

  // A folder without "mnist" in its name is a plain IDX set with measured statistics.
  write_split(dir / "plain", "train", false);
  EXPECT_EQ(parse_dataset_spec((dir / "plain").string()).kind, "idx");
  auto plain = open_dataset(parse_dataset_spec((dir / "plain").string()), Split::Train);
  double sum = 0;
  for (uint8_t p : test_pixels()) sum += p / 255.0;
  EXPECT_NEAR(plain->default_mean().at(0), sum / test_pixels().size(), 1e-6);
}

TEST(IdxDataset, BadMagicNamesFile) {
  TempDir dir;
  write_split(dir.path(), "train", false);
  const auto file = dir / "train-images-idx3-ubyte";
  auto bytes = idx_bytes(2049, {kN, kRows, kCols}, test_pixels());
  write_bytes(file, bytes);
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Train, "idx"); },
                     {file.string(), "bad magic", "2051", "2049"});
}

TEST(IdxDataset, TruncatedRawFileNamesFileAndSizes) {
  TempDir dir;
  write_split(dir.path(), "train", false);
  const auto file = dir / "train-images-idx3-ubyte";
  auto bytes = idx_bytes(kIdxImagesMagic, {kN, kRows, kCols}, test_pixels());
  bytes.resize(bytes.size() - 5);  // 16 + 60 = 76 expected, 71 present
  write_bytes(file, bytes);
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Train, "idx"); },
                     {file.string(), "truncated", "expected 76 bytes", "got 71"});
}

TEST(IdxDataset, TruncatedGzipNamesFile) {
  TempDir dir;
  write_split(dir.path(), "train", true);
  const auto file = dir / "train-images-idx3-ubyte.gz";
  auto gz = gzip_bytes(idx_bytes(kIdxImagesMagic, {kN, kRows, kCols}, test_pixels()));
  gz.resize(gz.size() / 2);
  write_bytes(file, gz);
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Train, "idx"); }, {file.string()});
}

TEST(IdxDataset, LabelOutOfRangeNamesFileAndSample) {
  TempDir dir;
  write_split(dir.path(), "train", false, {3, 12, 9});
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Train, "idx"); },
                     {(dir / "train-labels-idx1-ubyte").string(), "label 12", "sample 1"});
}

TEST(IdxDataset, CountMismatchAndMissingFiles) {
  TempDir dir;
  write_split(dir.path(), "train", false, {1, 2});
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Train, "idx"); },
                     {"2 labels", "3 images"});
  expect_input_error([&] { open_idx_dataset(dir.path(), Split::Test, "idx"); },
                     {dir.path().string(), "t10k-images-idx3-ubyte"});
}

TEST(IdxDataset, MissingMnistDefaultFolderIsExplained) {
  if (std::filesystem::exists("/usr/share/datasets/mnist")) GTEST_SKIP() << "mnist is installed";
  expect_input_error([] { open_dataset(parse_dataset_spec("mnist"), Split::Test); },
                     {"/usr/share/datasets/mnist", "does not exist", "mnist:PATH"});
}

TEST(IdxDataset, RealFashionMnistTestSplit) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "/usr/share/datasets/fashion-mnist is not installed";
  auto ds = open_dataset(parse_dataset_spec("fashion-mnist"), Split::Test);
  ASSERT_EQ(ds->size(), 10000u);
  EXPECT_EQ(ds->native_size(), 28);
  EXPECT_EQ(ds->channels(), 1);
  EXPECT_EQ(ds->label(0), 9);
  EXPECT_EQ(ds->class_names().at(ds->label(0)), "Ankle boot");
  std::array<int, 10> histogram{};
  for (size_t i = 0; i < ds->size(); ++i) ++histogram.at(ds->label(i));
  for (int c = 0; c < 10; ++c) EXPECT_EQ(histogram[c], 1000) << "class " << c;
  const Image first = ds->image(0);
  EXPECT_EQ(first.pixels.size(), 784u);
  EXPECT_EQ(first.pixels[0], 0);  // the ankle boot sits on a black background
}

}  // namespace
}  // namespace vitopt::data
