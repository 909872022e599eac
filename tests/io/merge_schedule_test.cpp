// Token-merging schedules: the spec forms, their errors, the capped token counts per block, the
// JSON round trip of merge_r and the MACs the counts imply.
#include "io/merge_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "io/model_counts.h"
#include "io/presets.h"
#include "test_util.h"

namespace vitopt::io {
namespace {

TEST(MergeSchedule, SpecForms) {
  EXPECT_EQ(parse_merge_schedule("8", 3, "--merge-r"), (std::vector<int>{8, 8, 8}));
  EXPECT_EQ(parse_merge_schedule("off", 2, "--merge-r"), (std::vector<int>{0, 0}));
  EXPECT_EQ(parse_merge_schedule("4,2,0", 3, "--merge-r"), (std::vector<int>{4, 2, 0}));
  // round(2 * 8 * (12 - b) / 13): the same 96 tokens as a constant 8 over 12 blocks.
  const auto d = parse_merge_schedule("decreasing", 12, "--merge-r");
  EXPECT_EQ(d, (std::vector<int>{15, 14, 12, 11, 10, 9, 7, 6, 5, 4, 2, 1}));
  const auto d13 = parse_merge_schedule("decreasing:13", 12, "x");
  EXPECT_EQ(std::accumulate(d13.begin(), d13.end(), 0), 156);
  EXPECT_TRUE(std::is_sorted(d13.rbegin(), d13.rend()));
  EXPECT_EQ(parse_merge_schedule("decreasing:0", 4, "x"), (std::vector<int>{0, 0, 0, 0}));
}

TEST(MergeSchedule, BadSpecsNameTheSourceAndTheForm) {
  for (const char* bad : {"", "-1", "x", "8,", "1,2", "1,2,3,4", "decreasing:", "decreasingly", "8.5"}) {
    try {
      parse_merge_schedule(bad, 3, "--merge-r");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("--merge-r"), std::string::npos) << e.what();
    }
  }
}

TEST(MergeSchedule, TokenCountsAreCappedAtHalfTheMergeableTokens) {
  ViTConfig c = preset("vit-fmnist");  // 49 patches + cls, 6 blocks
  c.normalize();
  set_merge_schedule(c, parse_merge_schedule("8", c.depth, "t"));
  // 50 -> 42 -> 34 -> 26 -> 18 -> 10 -> 10 - min(8, 9 / 2)
  EXPECT_EQ(c.token_counts(), (std::vector<int>{50, 42, 34, 26, 18, 10, 6}));
  c.blocks[1].skip_attn = true;  // no keys, no merging
  EXPECT_EQ(c.token_counts(), (std::vector<int>{50, 42, 42, 34, 26, 18, 10}));
  c.distill_token = true;        // two protected tokens: 51 tokens, (51 - 2) / 2 = 24
  c.blocks[0].merge_r = 100;
  EXPECT_EQ(c.merge_at(0, 51), 24);
}

TEST(MergeSchedule, MergeRRoundTripsAndIsOnlyWrittenWhenSet) {
  ViTConfig c = preset("vit-tiny-test");
  c.normalize();
  EXPECT_FALSE(c.to_json()["blocks"][0].contains("merge_r"));
  c.blocks[1].merge_r = 3;
  const auto back = ViTConfig::from_json(c.to_json());
  EXPECT_EQ(back.blocks[1].merge_r, 3);
  EXPECT_EQ(back.blocks[0].merge_r, 0);
  c.blocks[0].merge_r = -1;
  EXPECT_THROW(c.normalize(), std::exception);
}

TEST(MergeSchedule, MacsCountEachBlocksTokens) {
  ViTConfig c = preset("vit-fmnist");
  c.normalize();
  const int64_t plain = count_macs(c);
  set_merge_schedule(c, std::vector<int>(static_cast<size_t>(c.depth), 0));
  c.blocks.back().merge_r = 8;  // last block: the MLP sees 42 tokens instead of 50
  const int64_t C = c.embed_dim, M = c.mlp_dim, D = c.head_dim;
  EXPECT_EQ(count_macs(c), plain - 8 * 2 * C * M + 25 * 25 * D);
}

}  // namespace
}  // namespace vitopt::io
