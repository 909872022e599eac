// --data parsing, layout detection errors, limit_dataset, and the synthetic dataset's
// determinism (pixels are a pure function of seed, split and index).
#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data_test_util.h"
#include "test_util.h"

namespace vitopt::data {
namespace {

using testing::expect_input_error;
using testing::TempDir;

TEST(DatasetSpec, KnownNamesAndSynthetic) {
  EXPECT_EQ(parse_dataset_spec("fashion-mnist").kind, "fashion-mnist");
  EXPECT_EQ(parse_dataset_spec("fashion-mnist").path, "");
  const DatasetSpec def = parse_dataset_spec("synthetic");
  EXPECT_EQ(def.kind, "synthetic");
  EXPECT_EQ(def.synthetic_size, 28);
  const DatasetSpec s = parse_dataset_spec("synthetic:8:3:5:100");
  EXPECT_EQ(s.synthetic_size, 8);
  EXPECT_EQ(s.synthetic_channels, 3);
  EXPECT_EQ(s.synthetic_classes, 5);
  EXPECT_EQ(s.synthetic_count, 100u);
  expect_input_error([] { parse_dataset_spec("synthetic:8:2:5:100"); }, {"CHANNELS", "1 or 3"});
  expect_input_error([] { parse_dataset_spec("synthetic:8:x"); }, {"CHANNELS", "'x'"});
  expect_input_error([] { parse_dataset_spec("synthetic:1:1:1:1:1"); }, {"too many"});
}

TEST(DatasetSpec, UnknownNameListsValidOnesAndMissingPathIsNamed) {
  expect_input_error([] { parse_dataset_spec("imagenet22k"); },
                     {"unknown dataset 'imagenet22k'", "fashion-mnist", "cifar10", "synthetic"});
  expect_input_error([] { parse_dataset_spec("/no/such/folder"); }, {"/no/such/folder"});
  expect_input_error([] { parse_dataset_spec("cifar10:/no/such/cifar"); }, {"/no/such/cifar"});
  expect_input_error([] { parse_dataset_spec("imagefolder"); }, {"imagefolder:PATH"});
  TempDir empty;
  expect_input_error([&] { parse_dataset_spec(empty.path().string()); },
                     {empty.path().string(), "cannot tell"});
  DatasetSpec bad;
  bad.kind = "nope";
  expect_input_error([&] { open_dataset(bad, Split::Train); }, {"nope", "tiny-imagenet"});
}

TEST(SyntheticDataset, DeterministicAndCheap) {
  DatasetSpec spec = parse_dataset_spec("synthetic:6:3:7:1000000000");  // 1e9 images: no memory
  spec.seed = 42;
  auto a = open_dataset(spec, Split::Train);
  auto b = open_dataset(spec, Split::Train);
  ASSERT_EQ(a->size(), 1000000000u);
  EXPECT_EQ(a->num_classes(), 7);
  EXPECT_EQ(a->native_size(), 6);
  EXPECT_EQ(a->label(999999999), 999999999 % 7);
  const Image x = a->image(123456789);
  EXPECT_EQ(x.pixels.size(), 6u * 6 * 3);
  EXPECT_EQ(x.pixels, b->image(123456789).pixels);
  EXPECT_NE(x.pixels, a->image(123456788).pixels);
  EXPECT_NE(x.pixels, open_dataset(spec, Split::Test)->image(123456789).pixels);
  spec.seed = 43;
  EXPECT_NE(x.pixels, open_dataset(spec, Split::Train)->image(123456789).pixels);
  // Roughly uniform bytes.
  double sum = 0;
  for (size_t i = 0; i < 200; ++i)
    for (uint8_t p : a->image(i).pixels) sum += p;
  EXPECT_NEAR(sum / (200.0 * 108), 127.5, 3.0);
}

TEST(LimitDataset, FirstSamplesOnly) {
  auto base = open_dataset(parse_dataset_spec("synthetic:4:1:3:50"), Split::Train);
  auto limited = limit_dataset(base, 10);
  ASSERT_EQ(limited->size(), 10u);
  EXPECT_EQ(limited->label(4), base->label(4));
  EXPECT_EQ(limited->image(9).pixels, base->image(9).pixels);
  EXPECT_NE(limited->description().find("first 10"), std::string::npos);
  expect_input_error([&] { limited->image(10); }, {"sample 10"});
  EXPECT_EQ(limit_dataset(base, 0), base);
  EXPECT_EQ(limit_dataset(base, 50), base);
}

}  // namespace
}  // namespace vitopt::data
