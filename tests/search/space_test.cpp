// The search space: the YAML spec (defaults, every key, strict errors), its resolution against a
// base config, the repair rules, check(), genome keys and JSON, rank_for and the exact configs
// (parameters) a genome turns into.
#include "search/space.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "core/error.h"
#include "io/model_counts.h"
#include "search_test_util.h"
#include "test_util.h"

namespace vitopt::search {
namespace {

using testing::all_genomes;
using testing::tiny_base;
using vitopt::testing::expect_input_error;

SpaceSpec parse(const std::string& yaml) { return SpaceSpec::from_yaml_text(yaml, "space.yaml"); }

// A gene with every field given, in BlockGene's order.
BlockGene gene(bool attn, bool mlp, int heads, int mlp_dim, double r = 1.0, int w = 32, int a = 32,
               bool share = false, int merge = 0) {
  return {attn, mlp, heads, mlp_dim, r, w, a, share, merge};
}

// ------------------------------------------------------------------------------------------------
// YAML

TEST(SpaceSpec, EmptyTextAndEmptyBlocksGiveTheDefaults) {
  const auto defaults = SpaceSpec{}.to_json();
  EXPECT_EQ(parse("").to_json(), defaults);
  EXPECT_EQ(parse("blocks:\n").to_json(), defaults);
  EXPECT_EQ(parse("blocks: {}\n").to_json(), defaults);
  const SpaceSpec d;
  EXPECT_TRUE(d.drop_attention && d.drop_mlp && d.share);
  EXPECT_TRUE(d.heads.empty());
  EXPECT_EQ(defaults["blocks"]["heads"], "all");
}

TEST(SpaceSpec, ReadsEveryKey) {
  const SpaceSpec s = parse(R"(
blocks:
  drop_attention: false
  drop_mlp: false
  heads: [2, 4]
  mlp_width: {step: 32, min_ratio: 0.5}
  rank_ratio: [1.0, 0.75]
  weight_bits: [32, 4, 2, 16]
  input_bits: [8]
  share: false
  merge_r: [0, 16]
)");
  EXPECT_FALSE(s.drop_attention);
  EXPECT_FALSE(s.drop_mlp);
  EXPECT_EQ(s.heads, (std::vector<int>{2, 4}));
  EXPECT_EQ(s.mlp_step, 32);
  EXPECT_DOUBLE_EQ(s.mlp_min_ratio, 0.5);
  EXPECT_EQ(s.rank_ratios, (std::vector<double>{1.0, 0.75}));
  EXPECT_EQ(s.weight_bits, (std::vector<int>{32, 4, 2, 16}));
  EXPECT_EQ(s.input_bits, (std::vector<int>{8}));
  EXPECT_FALSE(s.share);
  EXPECT_EQ(s.merge_r, (std::vector<int>{0, 16}));
  // A key left out keeps its default; a single value is a one-item list; "all" clears heads.
  const SpaceSpec t = parse("blocks:\n  heads: all\n  merge_r: 4\n  mlp_width: {step: 8}\n");
  EXPECT_TRUE(t.heads.empty());
  EXPECT_EQ(t.merge_r, (std::vector<int>{4}));
  EXPECT_EQ(t.mlp_step, 8);
  EXPECT_DOUBLE_EQ(t.mlp_min_ratio, 0.25);
  EXPECT_EQ(t.weight_bits, SpaceSpec{}.weight_bits);
}

TEST(SpaceSpec, UnknownKeysNameTheKeyAndTheFile) {
  expect_input_error([] { parse("blocks:\n  drop_atention: true\n"); },
                     {"space.yaml", "blocks.drop_atention", "drop_attention"});
  expect_input_error([] { parse("block:\n  share: true\n"); }, {"space.yaml", "'block'"});
  expect_input_error([] { parse("blocks:\n  mlp_width: {stp: 16}\n"); },
                     {"space.yaml", "blocks.mlp_width.stp"});
}

TEST(SpaceSpec, BadValuesNameTheKeyAndTheExpectation) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"blocks:\n  weight_bits: [8, 1]\n", {"blocks.weight_bits", "[2, 16] or 32", "1"}},
      {"blocks:\n  input_bits: [33]\n", {"blocks.input_bits", "33"}},
      {"blocks:\n  weight_bits: []\n", {"blocks.weight_bits", "non-empty"}},
      {"blocks:\n  rank_ratio: [0]\n", {"blocks.rank_ratio", "(0, 1]"}},
      {"blocks:\n  rank_ratio: [1.5]\n", {"blocks.rank_ratio", "1.5"}},
      {"blocks:\n  rank_ratio: [half]\n", {"blocks.rank_ratio", "half"}},
      {"blocks:\n  mlp_width: {min_ratio: 0}\n", {"blocks.mlp_width.min_ratio", "(0, 1]"}},
      {"blocks:\n  mlp_width: {step: 0}\n", {"blocks.mlp_width.step", "0"}},
      {"blocks:\n  mlp_width: {step: 2.5}\n", {"blocks.mlp_width.step", "2.5"}},
      {"blocks:\n  mlp_width: 16\n", {"blocks.mlp_width", "mapping"}},
      {"blocks:\n  merge_r: [-1]\n", {"blocks.merge_r", "-1"}},
      {"blocks:\n  heads: [0, 2]\n", {"blocks.heads", "0"}},
      {"blocks:\n  heads: some\n", {"blocks.heads", "some"}},
      {"blocks:\n  drop_mlp: maybe\n", {"blocks.drop_mlp", "true or false", "maybe"}},
      {"blocks:\n  share: [true]\n", {"blocks.share"}},
      {"blocks: 3\n", {"blocks", "mapping"}},
      {"blocks: [\n", {"invalid YAML"}},
  };
  for (const auto& [yaml, parts] : cases) {
    SCOPED_TRACE(yaml);
    auto with_source = parts;
    with_source.push_back("space.yaml");
    expect_input_error([&] { parse(yaml); }, with_source);
  }
}

TEST(SpaceSpec, ReadsAFileAndNamesAMissingOne) {
  vitopt::testing::TempDir dir;
  std::ofstream(dir / "s.yaml") << "blocks:\n  merge_r: [0, 2]\n  share: maybe\n";
  expect_input_error([&] { SpaceSpec::from_yaml_file(dir / "s.yaml"); },
                     {(dir / "s.yaml").string(), "blocks.share"});
  std::ofstream(dir / "s.yaml") << "blocks:\n  merge_r: [0, 2]\n";
  EXPECT_EQ(SpaceSpec::from_yaml_file(dir / "s.yaml").merge_r, (std::vector<int>{0, 2}));
  expect_input_error([&] { SpaceSpec::from_yaml_file(dir / "none.yaml"); },
                     {"none.yaml", "not found"});
}

// ------------------------------------------------------------------------------------------------
// Resolution

TEST(Space, ResolvesChoicesPerBlockOfTheBase) {
  io::ViTConfig base = tiny_base(3, 4);  // C 32, D 8, MLP 64
  base.blocks[1].num_heads = 2;          // a pruned base: block 1 and 2 narrower
  base.blocks[1].mlp_dim = 100;
  base.blocks[2].num_heads = 2;
  base.blocks[2].mlp_dim = 100;
  SpaceSpec spec;
  spec.heads = {3, 2, 8};
  spec.mlp_min_ratio = 0.3;  // 0.3 * 64 = 19.2 -> from 32; 0.3 * 100 = 30 -> from 32
  spec.rank_ratios = {0.5, 0.25, 0.5};
  spec.weight_bits = {8, 4};
  const Space space(spec, base);
  ASSERT_EQ(space.blocks().size(), 3u);
  const BlockChoices& b0 = space.blocks()[0];
  EXPECT_EQ(b0.attn, (std::vector<bool>{false, true}));
  EXPECT_EQ(b0.mlp, (std::vector<bool>{false, true}));
  EXPECT_EQ(b0.heads, (std::vector<int>{2, 3, 4}));  // 8 > 4 dropped, the base's 4 added
  EXPECT_EQ(b0.mlp_dims, (std::vector<int>{32, 48, 64}));
  EXPECT_EQ(b0.rank_ratios, (std::vector<double>{0.25, 0.5, 1.0}));  // sorted, unique, 1 added
  EXPECT_EQ(b0.wbits, (std::vector<int>{4, 8, 32}));
  EXPECT_EQ(b0.abits, (std::vector<int>{8, 32}));
  EXPECT_EQ(b0.merge_r, (std::vector<int>{0, 2, 4, 8}));
  EXPECT_FALSE(b0.share);  // block 0 never shares
  const BlockChoices& b1 = space.blocks()[1];
  EXPECT_EQ(b1.heads, (std::vector<int>{2}));                           // capped at 2
  EXPECT_EQ(b1.mlp_dims, (std::vector<int>{32, 48, 64, 80, 96, 100}));  // plus the full width
  EXPECT_FALSE(b1.share);                                               // block 0 has other shapes
  EXPECT_TRUE(space.blocks()[2].share);                                 // same shapes as block 1

  spec.heads.clear();  // all
  spec.drop_attention = false;
  spec.share = false;
  spec.mlp_step = 48;
  spec.mlp_min_ratio = 1.0;
  const Space all(spec, base);
  EXPECT_EQ(all.blocks()[0].heads, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(all.blocks()[0].attn, (std::vector<bool>{true}));
  EXPECT_EQ(all.blocks()[0].mlp_dims, (std::vector<int>{64}));
  EXPECT_EQ(all.blocks()[1].mlp_dims, (std::vector<int>{100}));
  EXPECT_FALSE(all.blocks()[2].share);
}

TEST(Space, RefusesBasesItCannotEdit) {
  io::ViTConfig shared = tiny_base(2, 2);
  shared.blocks[1].shared_with = 0;
  expect_input_error([&] { Space(SpaceSpec{}, shared); }, {"block 1", "shared"});
  io::ViTConfig low_rank = tiny_base(2, 2);
  low_rank.blocks[0].fc1_rank = 8;
  expect_input_error([&] { Space(SpaceSpec{}, low_rank); }, {"block 0", "low-rank"});
  SpaceSpec bad;
  bad.weight_bits = {1};
  expect_input_error([&] { Space(bad, tiny_base()); }, {"weight_bits"});
}

TEST(Space, LargestIsTheBaseAndSmallestTheCheapest) {
  const io::ViTConfig base = tiny_base(2, 2);
  const Space space(SpaceSpec{}, base);
  EXPECT_EQ(space.largest().key(), "A2M64r1w32a32m0|A2M64r1w32a32m0");
  // Everything may drop: one MLP of the narrowest width stays, at the lowest rank and bits.
  EXPECT_EQ(space.smallest().key(), "-M16r.25w4a8m0|--");
  SpaceSpec keep;
  keep.drop_attention = keep.drop_mlp = false;
  const Space kept(keep, base);
  EXPECT_EQ(kept.smallest().key(), "A1M16r.25w4a8m8|Sm8");  // the second block shares the first
  std::mt19937_64 rng(1);
  for (const Space* s : {&space, &kept}) {
    const io::ViTConfig small = genome_config(base, s->smallest());
    for (int i = 0; i < 500; ++i) {
      const io::ViTConfig c = genome_config(base, s->random(rng));
      EXPECT_LE(io::count_params(small), io::count_params(c));
      EXPECT_LE(io::count_macs(small), io::count_macs(c));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Repair and check

TEST(Space, RepairAppliesTheRules) {
  const Space space(SpaceSpec{}, tiny_base(3, 2));
  Genome g;
  g.blocks = {gene(true, true, 2, 64, 0.5, 8, 8, /*share=*/true, 4),    // block 0 cannot share
              gene(true, false, 1, 16, 1.0, 4, 32, /*share=*/true, 2),  // copies block 0
              gene(false, true, 2, 48, 0.25, 32, 8, false, 8)};         // dropped attention
  const Genome r = space.repair(g);
  EXPECT_EQ(r.blocks[0], gene(true, true, 2, 64, 0.5, 8, 8, false, 4));
  EXPECT_EQ(r.blocks[1], gene(true, true, 2, 64, 0.5, 8, 8, true, 2));  // keeps its own merge_r
  // No heads, no merging without attention; fp32 weights take fp32 inputs.
  EXPECT_EQ(r.blocks[2], gene(false, true, 0, 48, 0.25, 32, 32, false, 0));
  EXPECT_EQ(r.key(), "A2M64r.5w8a8m4|Sm2|-M48r.25w32a32m0");

  // Values snap to the nearest choice (a tie to the larger one).
  Genome s;
  s.blocks = {gene(true, true, 7, 50, 0.3, 7, 9, false, 3), gene(true, true, 0, 0, 2.0, 40, 1)};
  const Genome rs = space.repair(s);
  EXPECT_EQ(rs.blocks[0], gene(true, true, 2, 48, 0.25, 8, 8, false, 4));
  EXPECT_EQ(rs.blocks[1], gene(true, true, 1, 16, 1.0, 32, 32));
  EXPECT_EQ(rs.blocks.size(), 3u);  // a missing block is the base's
  EXPECT_EQ(rs.blocks[2], space.largest().blocks[2]);

  // Nothing kept: block 0 keeps its narrowest MLP. A block keeping nothing has neutral genes.
  Genome none;
  none.blocks.assign(3, gene(false, false, 2, 64, 0.5, 4, 8, true, 8));
  const Genome rn = space.repair(none);
  EXPECT_EQ(rn.blocks[0], gene(false, true, 0, 16));
  EXPECT_EQ(rn.blocks[1], gene(false, false, 0, 0));
  EXPECT_EQ(rn.key(), "-M16r1w32a32m0|--|--");

  // A shared block follows a repaired previous block; a run of shares copies the owner.
  Genome run;
  run.blocks = {gene(true, true, 1, 32, 1, 6, 32), gene(false, false, 0, 0, 1, 32, 32, true),
                gene(false, true, 0, 16, 1, 32, 32, true)};
  const Genome rr = space.repair(run);
  EXPECT_EQ(rr.blocks[1], gene(true, true, 1, 32, 1, 6, 32, true));
  EXPECT_EQ(rr.blocks[2], gene(true, true, 1, 32, 1, 6, 32, true));
}

TEST(Space, OperatorsGiveValidGenomesAndRepairIsIdempotent) {
  const Space space(SpaceSpec{}, tiny_base(3, 2));
  std::mt19937_64 rng(7);
  std::set<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    const Genome a = space.random(rng), b = space.random(rng);
    const Genome c = space.crossover(a, b, rng);
    const Genome m = space.mutate(c, 0.3, rng);
    for (const Genome* g : {&a, &b, &c, &m}) {
      EXPECT_EQ(space.repair(*g), *g) << g->key();
      EXPECT_NO_THROW(space.check(*g, "t"));
      EXPECT_NO_THROW(genome_config(space.base(), *g));
      keys.insert(g->key());
    }
    // Crossover takes each block from a parent: an unshared kept block is that parent's (unless
    // it is the only one kept: then repair may have made it up).
    const auto kept = std::count_if(c.blocks.begin(), c.blocks.end(),
                                    [](const BlockGene& x) { return x.attn || x.mlp; });
    for (size_t k = 0; k < c.blocks.size() && kept > 1; ++k) {
      if (!c.blocks[k].share && (c.blocks[k].attn || c.blocks[k].mlp)) {
        EXPECT_TRUE(c.blocks[k] == a.blocks[k] || c.blocks[k] == b.blocks[k]) << c.key();
      }
    }
  }
  EXPECT_GT(keys.size(), 500u);  // random genomes are spread over the space
  EXPECT_EQ(space.mutate(space.largest(), 0.0, rng), space.largest());
  // Repair of anything is valid and a fixed point.
  Genome odd;
  odd.blocks = {gene(false, false, 9, 9, 0.01, 3, 3, true, 99)};
  const Genome r = space.repair(odd);
  EXPECT_EQ(space.repair(r), r);
  EXPECT_NO_THROW(space.check(r, "t"));
}

TEST(Space, CheckAcceptsExactlyTheRepairedGenomes) {
  SpaceSpec spec;
  spec.heads = {1};
  spec.mlp_step = 32;
  spec.mlp_min_ratio = 0.5;
  spec.rank_ratios = {1};
  spec.weight_bits = {8};
  spec.input_bits = {8};
  spec.merge_r = {2};
  const Space space(spec, tiny_base(2, 2));
  std::vector<std::vector<BlockGene>> cands;
  for (const auto& ch : space.blocks()) cands.push_back(testing::block_candidates(ch));
  size_t valid = 0;
  for (const BlockGene& x : cands[0]) {
    for (const BlockGene& y : cands[1]) {
      Genome g;
      g.blocks = {x, y};
      bool accepted = true;
      try {
        space.check(g, "t");
      } catch (const core::InputError&) {
        accepted = false;
      }
      EXPECT_EQ(accepted, space.repair(g) == g) << g.key();
      valid += accepted;
    }
  }
  EXPECT_EQ(valid, all_genomes(space).size());
}

TEST(Space, CheckNamesTheSourceAndTheGene) {
  const Space space(SpaceSpec{}, tiny_base(2, 2));
  const Genome ok = space.largest();
  auto with = [&](auto edit) {
    Genome g = ok;
    edit(g);
    return g;
  };
  auto check = [&](const Genome& g) { return [&space, g] { space.check(g, "genome.json"); }; };
  expect_input_error(check(with([](Genome& g) { g.blocks.pop_back(); })),
                     {"genome.json", "blocks", "2 blocks", "1 blocks"});
  expect_input_error(check(with([](Genome& g) { g.blocks[1].heads = 3; })),
                     {"genome.json", "blocks[1].heads", "one of [1, 2]", "3"});
  expect_input_error(check(with([](Genome& g) { g.blocks[0].mlp_dim = 40; })),
                     {"blocks[0].mlp_dim", "one of [16, 32, 48, 64]", "40"});
  expect_input_error(check(with([](Genome& g) { g.blocks[0].abits = 8; })),
                     {"blocks[0].abits", "wbits < 32"});
  expect_input_error(check(with([](Genome& g) { g.blocks[0].share = true; })),
                     {"blocks[0].share", "block 0"});
  expect_input_error(
      check(with([](Genome& g) { g.blocks[1].share = true, g.blocks[1].heads = 1; })),
      {"blocks[1].share", "previous block"});
  expect_input_error(check(with([](Genome& g) { g.blocks[0].attn = false; })),
                     {"blocks[0].heads", "0 (attention dropped)"});
  expect_input_error(check(with([](Genome& g) { g.blocks[1].merge_r = 3; })),
                     {"blocks[1].merge_r", "3"});
  expect_input_error(check(with([](Genome& g) {
                       for (auto& b : g.blocks) b = gene(false, false, 0, 0);
                     })),
                     {"genome.json", "at least one"});
}

// ------------------------------------------------------------------------------------------------
// Genomes

TEST(Genome, KeysAreUniqueOverEveryValidGenome) {
  SpaceSpec spec;
  spec.heads = {1};
  spec.mlp_step = 32;
  spec.mlp_min_ratio = 0.5;
  spec.rank_ratios = {0.5};
  spec.weight_bits = {8, 4};
  spec.input_bits = {8};
  spec.merge_r = {2};
  const Space space(spec, tiny_base(2, 2));
  const auto all = all_genomes(space);
  std::set<std::string> keys;
  for (const Genome& g : all) keys.insert(g.key());
  EXPECT_EQ(keys.size(), all.size());
  EXPECT_GT(all.size(), 1000u);
}

TEST(Genome, JsonRoundTripAndStrictFields) {
  const Space space(SpaceSpec{}, tiny_base(3, 2));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) {
    const Genome g = space.random(rng);
    EXPECT_EQ(Genome::from_json(nlohmann::json::parse(g.to_json().dump()), "g"), g);
  }
  auto j = space.largest().to_json();
  j["blocks"][1]["hedas"] = 2;
  expect_input_error([&] { Genome::from_json(j, "state.json"); },
                     {"state.json", "blocks[1].hedas"});
  j = space.largest().to_json();
  j["blocks"][0]["wbits"] = "8";
  expect_input_error([&] { Genome::from_json(j, "state.json"); }, {"blocks[0].wbits", "integer"});
  expect_input_error([&] { Genome::from_json(nlohmann::json::object(), "state.json"); },
                     {"state.json", "blocks"});
}

// ------------------------------------------------------------------------------------------------
// Configs

TEST(RankFor, RoundsUpToEightAndFallsBackToDense) {
  EXPECT_EQ(rank_for(1.0, 96, 32), 0);
  EXPECT_EQ(rank_for(0.5, 96, 32), 16);   // 0.5 * 32 = 16: 16 * 128 < 3072
  EXPECT_EQ(rank_for(0.25, 96, 32), 8);   // 8
  EXPECT_EQ(rank_for(0.5, 32, 32), 0);    // 16 * 64 = 1024: not below the dense 1024
  EXPECT_EQ(rank_for(0.25, 32, 32), 8);   // 8 * 64 = 512
  EXPECT_EQ(rank_for(0.3, 100, 37), 16);  // round(11.1) = 11 -> 16: 16 * 137 = 2192 < 3700
  EXPECT_EQ(rank_for(0.01, 64, 64), 8);   // round(0.64) = 1 -> 8, never 0 (which means dense)
  EXPECT_EQ(rank_for(0.9, 160, 64), 0);   // round(57.6) = 58 -> 64 = min(out, in): dense
  EXPECT_EQ(rank_for(0.5, 768, 3072), 384);
}

TEST(GenomeConfig, LargestIsTheBaseExactly) {
  for (int depth : {2, 3}) {
    const io::ViTConfig base = tiny_base(depth, 2);
    const Space space(SpaceSpec{}, base);
    const io::ViTConfig c = genome_config(base, space.largest());
    EXPECT_EQ(c.to_json(), base.to_json());
    EXPECT_EQ(io::count_params(c), io::count_params(base));
    EXPECT_EQ(io::count_macs(c), io::count_macs(base));
  }
}

TEST(GenomeConfig, HandComputedParamsOfASlimmedGenome) {
  // vit-tiny-test: C 32, D 16, 16 patches of 49 features + cls = 17 tokens, 10 classes.
  const io::ViTConfig base = tiny_base(2, 2);
  const int64_t other = (32 * 49 + 32) + 32 + 17 * 32 + 2 * 32 + (32 * 10 + 10);
  ASSERT_EQ(io::other_params(base), other);  // 2570
  Genome g;
  g.blocks = {gene(true, true, 1, 32), gene(false, true, 0, 64, 0.25, 8, 8)};
  const io::ViTConfig c = genome_config(base, g);
  // Block 0: attention of one head (qkv 48 x 32 + bias, proj 32 x 16 + bias) and MLP 32.
  const int64_t attn0 = 2 * 32 + (48 * 32 + 48) + (32 * 16 + 32);
  const int64_t mlp0 = 2 * 32 + (32 * 32 + 32) + (32 * 32 + 32);
  // Block 1: no attention; MLP 64 at rank 8 = 0.25 * 32 (8 * (64 + 32) per factor pair).
  const int64_t mlp1 = 2 * 32 + (8 * 96 + 64) + (8 * 96 + 32);
  EXPECT_EQ(io::block_params(c), (std::vector<int64_t>{attn0 + mlp0, mlp1}));
  EXPECT_EQ(io::count_params(c), other + 4368 + 1696);
  EXPECT_EQ(io::count_params(c), 8634);
  // As slim_config writes them: a dropped sub-block keeps its base width, nothing else changes.
  const io::BlockConfig& b1 = c.blocks[1];
  EXPECT_TRUE(b1.skip_attn);
  EXPECT_FALSE(b1.skip_mlp);
  EXPECT_EQ(b1.num_heads, 2);
  EXPECT_EQ(b1.mlp_dim, 64);
  EXPECT_EQ(b1.qkv_rank + b1.proj_rank, 0);
  EXPECT_EQ(b1.fc1_rank, 8);
  EXPECT_EQ(b1.fc2_rank, 8);
  EXPECT_EQ(c.blocks[0].num_heads, 1);
  EXPECT_TRUE(c.blocks[0].kept_heads.empty());
}

TEST(GenomeConfig, SharingPointsAtTheOwnerAndMergingNeedsAttention) {
  const io::ViTConfig base = tiny_base(4, 2);
  const Space space(SpaceSpec{}, base);
  Genome g;
  g.blocks = {gene(true, true, 1, 32, 0.5, 8, 8, false, 2),
              gene(true, true, 1, 32, 0.5, 8, 8, true, 4), gene(true, true, 1, 32, 0.5, 8, 8, true),
              gene(false, true, 0, 16, 1, 32, 32)};
  space.check(g, "t");
  const io::ViTConfig c = genome_config(base, g);
  EXPECT_EQ(c.blocks[0].shared_with, -1);
  EXPECT_EQ(c.blocks[1].shared_with, 0);  // a run of shares: all point at its first block
  EXPECT_EQ(c.blocks[2].shared_with, 0);
  EXPECT_EQ(c.blocks[3].shared_with, -1);
  EXPECT_EQ((std::vector<int>{c.blocks[0].merge_r, c.blocks[1].merge_r, c.blocks[2].merge_r,
                              c.blocks[3].merge_r}),
            (std::vector<int>{2, 4, 0, 0}));
  const auto bp = io::block_params(c);
  EXPECT_EQ(bp[1], 0);
  EXPECT_EQ(bp[2], 0);
  // qkv (48, 32) at 0.5: rank 16; proj (32, 16): 8 * 48 = 384 < 512 -> 8; fc1/fc2 (32, 32): dense.
  EXPECT_EQ(c.blocks[0].qkv_rank, 16);
  EXPECT_EQ(c.blocks[0].proj_rank, 8);
  EXPECT_EQ(c.blocks[0].fc1_rank, 0);
  EXPECT_EQ(c.blocks[2].qkv_rank, 16);  // shared: same shapes and ranks as the owner
  EXPECT_TRUE(quantized(g));
  EXPECT_FALSE(quantized(space.largest()));
  // Genomes from elsewhere cannot silently mean "the default width".
  Genome bad = g;
  bad.blocks[0].heads = 0;
  expect_input_error([&] { genome_config(base, bad); }, {"blocks[0].heads"});
  bad.blocks.pop_back();
  expect_input_error([&] { genome_config(base, bad); }, {"blocks", "4 blocks"});
}

}  // namespace
}  // namespace vitopt::search
