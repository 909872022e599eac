// The single-technique genomes the search front is compared with: each technique alone, uniform
// over the blocks, at the settings the space allows.
#include "search/single_techniques.h"

#include <gtest/gtest.h>

#include "io/presets.h"

namespace vitopt::search {
namespace {

TEST(SingleTechniques, EachTechniqueAloneAtItsSettings) {
  auto c = io::preset("vit-fmnist");  // 6 blocks, 4 heads, MLP 256
  c.normalize("test");
  const Space space(SpaceSpec{}, c);
  const auto all = single_technique_genomes(space);
  const Genome full = space.largest();
  std::map<std::string, std::vector<std::string>> settings;
  for (const auto& t : all) {
    settings[t.technique].push_back(t.setting);
    EXPECT_NE(t.genome, full);
    EXPECT_EQ(space.repair(t.genome), t.genome) << t.genome.key();
    // The model itself at its own side: the whole-model genes are the search's alone.
    EXPECT_EQ(t.genome.student, 0);
    EXPECT_EQ(t.genome.resolution, 0);
    for (const auto& b : t.genome.blocks) {  // only this technique's genes moved
      const auto& f = full.blocks.front();
      if (t.technique != "prune") {
        EXPECT_EQ(b.heads, f.heads);
      }
      if (t.technique != "prune") {
        EXPECT_EQ(b.mlp_dim, f.mlp_dim);
      }
      if (t.technique != "quantize") {
        EXPECT_EQ(b.wbits, 32);
      }
      if (t.technique != "factorize") {
        EXPECT_EQ(b.rank_ratio, 1.0);
      }
      if (t.technique != "merge") {
        EXPECT_EQ(b.merge_r, 0);
      }
    }
  }
  EXPECT_EQ(settings["prune"], (std::vector<std::string>{"25%", "50%", "75%"}));
  EXPECT_EQ(settings["factorize"], (std::vector<std::string>{"rank 0.25", "rank 0.5"}));
  EXPECT_EQ(settings["merge"], (std::vector<std::string>{"r 2", "r 4", "r 8"}));
  EXPECT_EQ(settings["quantize"].size(), 6u);  // w4/w6/w8, each with fp32 or 8-bit inputs
  const auto& p75 = all[2];
  ASSERT_EQ(p75.setting, "75%");
  for (const auto& b : p75.genome.blocks) {
    EXPECT_EQ(b.heads, 1);
    EXPECT_EQ(b.mlp_dim, 64);
  }
}

}  // namespace
}  // namespace vitopt::search
