// Range views: the held-out tail the architecture search estimates accuracy on holds exactly the
// last samples of the split, disjoint from the first ones calibration reads.
#include "data/range_dataset.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace vitopt::data {
namespace {

using testing::expect_input_error;

TEST(RangeDataset, TailIsTheLastSamplesAndRangesAreChecked) {
  auto base = open_dataset(parse_dataset_spec("synthetic:4:1:3:50"), Split::Train);
  auto tail = tail_dataset(base, 8);
  ASSERT_EQ(tail->size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(tail->label(i), base->label(42 + i));
    EXPECT_EQ(tail->image(i).pixels, base->image(42 + i).pixels);
  }
  EXPECT_NE(tail->description().find("samples 42..49"), std::string::npos) << tail->description();
  expect_input_error([&] { tail->image(8); }, {"sample 8", "size 8"});
  auto mid = range_dataset(base, 10, 5);
  EXPECT_EQ(mid->image(4).pixels, base->image(14).pixels);
  expect_input_error([&] { tail_dataset(base, 51); }, {"last 51", "has 50"});
  expect_input_error([&] { range_dataset(base, 48, 3); }, {"48..51", "has 50"});
  EXPECT_EQ(tail_dataset(base, 0)->size(), 0u);
}

}  // namespace
}  // namespace vitopt::data
