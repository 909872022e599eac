// The search space: the YAML spec (defaults, every key, strict errors), its resolution against a
// base config and its student presets (block choices, input sides), the repair rules, check(),
// the genetic operators over every base and side, genome keys and JSON, rank_for and the exact
// configs (parameters) a genome turns into.
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
  EXPECT_EQ(parse("model:\n").to_json(), defaults);
  EXPECT_EQ(parse("blocks: {}\nmodel: {}\n").to_json(), defaults);
  const SpaceSpec d;
  EXPECT_TRUE(d.drop_attention && d.drop_mlp && d.share);
  EXPECT_TRUE(d.heads.empty());
  EXPECT_EQ(defaults["blocks"]["heads"], "all");
  EXPECT_EQ(d.resolution, (std::vector<double>{1.0, 0.85, 0.7}));
  EXPECT_TRUE(d.students.empty());
  EXPECT_EQ(defaults["model"],
            nlohmann::json::parse(R"({"resolution": [1.0, 0.85, 0.7], "students": []})"));
}

TEST(SpaceSpec, TheShippedFileIsTheDefault) {
  const auto path = vitopt::testing::source_dir() / "configs" / "search-space.yaml";
  EXPECT_EQ(SpaceSpec::from_yaml_file(path).to_json(), SpaceSpec{}.to_json());
}

TEST(SpaceSpec, ReadsTheModelSection) {
  const SpaceSpec s = parse(R"(
model:
  resolution: [1.0, 0.5, 0.75]
  students: [vit-fmnist-student, vit-tiny-test]
)");
  EXPECT_EQ(s.resolution, (std::vector<double>{1.0, 0.5, 0.75}));  // as written: Space sorts
  EXPECT_EQ(s.students, (std::vector<std::string>{"vit-fmnist-student", "vit-tiny-test"}));
  EXPECT_EQ(s.to_json()["model"]["students"],
            nlohmann::json::parse(R"(["vit-fmnist-student", "vit-tiny-test"])"));
  EXPECT_EQ(s.to_json()["blocks"], SpaceSpec{}.to_json()["blocks"]);  // blocks untouched
  // A key left out keeps its default; a single value is a one-item list; [] means no students.
  const SpaceSpec t = parse("model:\n  resolution: 0.75\n  students: []\n");
  EXPECT_EQ(t.resolution, (std::vector<double>{0.75}));
  EXPECT_TRUE(t.students.empty());
  const SpaceSpec u = parse("model: {students: vit-tiny-test}\n");
  EXPECT_EQ(u.students, (std::vector<std::string>{"vit-tiny-test"}));
  EXPECT_EQ(u.resolution, SpaceSpec{}.resolution);
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
  expect_input_error([] { parse("model:\n  x: 1\n"); },
                     {"space.yaml", "model.x", "resolution", "students"});
  expect_input_error([] { parse("model:\n  student: [vit-tiny-test]\n"); },
                     {"space.yaml", "model.student"});
  // A key that is a collection, not a word (found by fuzz_search_space: it ended in a bare
  // yaml-cpp exception).
  expect_input_error([] { parse("blocks:\n  {[1]: 2}: 3\n"); }, {"space.yaml", "not a word"});
  expect_input_error([] { parse("{a: 1}: 2\n"); }, {"space.yaml", "not a word"});
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
      {"model:\n  resolution: [1.0, 0]\n", {"model.resolution", "(0, 1]", "0"}},
      {"model:\n  resolution: [1.5]\n", {"model.resolution", "(0, 1]", "1.5"}},
      {"model:\n  resolution: [-0.5]\n", {"model.resolution", "-0.5"}},
      {"model:\n  resolution: []\n", {"model.resolution", "non-empty"}},
      {"model:\n  resolution: [half]\n", {"model.resolution", "half"}},
      {"model:\n  resolution: {a: 1}\n", {"model.resolution"}},
      // An unknown student is named, with the presets that exist.
      {"model:\n  students: [vit-fmnist-studnet]\n",
       {"model.students", "'vit-fmnist-studnet'", "vit-fmnist-student", "deit-tiny"}},
      {"model:\n  students: [vit-tiny-test, vit-tiny-test]\n",
       {"model.students", "distinct", "vit-tiny-test"}},
      {"model:\n  students: {a: 1}\n", {"model.students"}},
      {"model: 3\n", {"model", "mapping"}},
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
  shared.blocks[1].mlp_shared_with = 0;
  expect_input_error([&] { Space(SpaceSpec{}, shared); }, {"block 1", "shared"});
  io::ViTConfig low_rank = tiny_base(2, 2);
  low_rank.blocks[0].fc1_rank = 8;
  expect_input_error([&] { Space(SpaceSpec{}, low_rank); }, {"block 0", "low-rank"});
  SpaceSpec bad;
  bad.weight_bits = {1};
  expect_input_error([&] { Space(bad, tiny_base()); }, {"weight_bits"});
  // A spec built in code is checked like a file: the model section too.
  SpaceSpec bad_model;
  bad_model.resolution = {0.0};
  expect_input_error([&] { Space(bad_model, tiny_base()); }, {"model.resolution", "0"});
  bad_model = SpaceSpec{};
  bad_model.students = {"no-such-preset"};
  expect_input_error([&] { Space(bad_model, tiny_base()); },
                     {"model.students", "no-such-preset", "vit-fmnist-student"});
  // A student whose patches do not tile the model's input.
  io::ViTConfig odd = tiny_base(2, 2);
  odd.image_size = 35;  // patch 7: 5 x 5 patches; vit-fmnist-student's patch 4 does not divide 35
  odd.normalize("odd");
  bad_model.students = {"vit-fmnist-student"};
  expect_input_error([&] { Space(bad_model, odd); }, {"vit-fmnist-student", "patch size 4", "35"});
}

TEST(Space, InputSidesAreWholePatchesUpToTheBasesOwn) {
  // 28 / patch 4 = 7 patches: 0.85 * 7 = 5.95 -> 6 (24), 0.7 * 7 = 4.9 -> 5 (20).
  const Space fmnist(SpaceSpec{}, io::preset("vit-fmnist"));
  EXPECT_EQ(fmnist.resolutions(), (std::vector<int>{20, 24, 28}));
  // 224 / patch 16 = 14 patches: 11.9 -> 12 (192), 9.8 -> 10 (160).
  const Space deit(SpaceSpec{}, io::preset("deit-tiny"));
  EXPECT_EQ(deit.resolutions(), (std::vector<int>{160, 192, 224}));
  // 28 / patch 7 = 4 patches: 3.4 and 2.8 both round to 3 (21).
  EXPECT_EQ(Space(SpaceSpec{}, tiny_base()).resolutions(), (std::vector<int>{21, 28}));
  SpaceSpec spec;
  spec.resolution = {0.01, 0.5, 0.5};  // at least one patch; duplicates once; the side added
  EXPECT_EQ(Space(spec, io::preset("vit-fmnist")).resolutions(), (std::vector<int>{4, 16, 28}));
  spec.resolution = {1.0};
  const Space fixed(spec, tiny_base());
  EXPECT_EQ(fixed.resolutions(), (std::vector<int>{28}));
  EXPECT_EQ(fixed.smallest().resolution, 0);  // one side only: the base's own, spelled 0
  std::mt19937_64 rng(5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(fixed.random(rng).resolution, 0);
}

TEST(StudentConfig, ThePresetsShapeWithTheModelsInputAndOutput) {
  io::ViTConfig model = io::preset("vit-fmnist");
  model.name = "my-model";
  model.image_size = 32;
  model.in_channels = 3;
  model.num_classes = 7;
  model.preprocess.mean = {0.1f, 0.2f, 0.3f};
  model.preprocess.std = {0.4f};  // broadcast to the 3 channels by normalize()
  model.preprocess.interpolation = "bicubic";
  model.normalize("model");
  const io::ViTConfig c = student_config("vit-fmnist-student", model);
  const io::ViTConfig p = io::preset("vit-fmnist-student");
  EXPECT_EQ(c.name, "vit-fmnist-student");
  EXPECT_EQ(c.image_size, 32);
  EXPECT_EQ(c.in_channels, 3);
  EXPECT_EQ(c.num_classes, 7);
  EXPECT_EQ(c.preprocess, model.preprocess);
  EXPECT_EQ(c.preprocess.std, (std::vector<float>{0.4f, 0.4f, 0.4f}));
  EXPECT_FALSE(c.distill_token);
  // Everything else is the preset's.
  EXPECT_EQ(c.patch_size, p.patch_size);
  EXPECT_EQ(c.embed_dim, p.embed_dim);
  EXPECT_EQ(c.depth, p.depth);
  EXPECT_EQ(c.num_heads, p.num_heads);
  EXPECT_EQ(c.mlp_dim, p.mlp_dim);
  EXPECT_EQ(c.blocks.size(), static_cast<size_t>(p.depth));  // normalized
  EXPECT_EQ(c.num_tokens(), 8 * 8 + 1);
  // The student of the preset's own data is the preset.
  EXPECT_EQ(student_config("vit-fmnist-student", io::preset("vit-fmnist")).to_json(), p.to_json());
  expect_input_error([&] { student_config("vit-fmnist-studnet", model); },
                     {"vit-fmnist-studnet", "vit-fmnist-student"});
  model.image_size = 30;  // vit-fmnist's patch 4 does not divide 30 either: normalize refuses
  expect_input_error([&] { student_config("vit-fmnist-student", model); }, {"my-model"});
  io::ViTConfig tiny = tiny_base();
  tiny.image_size = 35;
  expect_input_error([&] { student_config("vit-fmnist-student", tiny); },
                     {"student preset 'vit-fmnist-student'", "patch size 4", "35"});
}

TEST(Space, StudentsAreBasesOfTheirOwn) {
  const io::ViTConfig model = io::preset("vit-fmnist");  // C 128, 6 blocks, 4 heads, MLP 256
  SpaceSpec spec;
  spec.students = {"vit-fmnist-student"};  // C 64, 6 blocks, 2 heads, MLP 128
  const Space space(spec, model);
  ASSERT_EQ(space.num_bases(), 2);
  EXPECT_EQ(space.base(0).to_json(), model.to_json());
  EXPECT_EQ(space.base(1).to_json(), student_config("vit-fmnist-student", model).to_json());
  ASSERT_EQ(space.blocks(1).size(), 6u);
  EXPECT_EQ(space.blocks(1)[0].heads, (std::vector<int>{1, 2}));
  EXPECT_EQ(space.blocks(1)[0].mlp_dims, (std::vector<int>{32, 48, 64, 80, 96, 112, 128}));
  EXPECT_EQ(space.blocks(0)[0].heads, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(space.resolutions(1), (std::vector<int>{20, 24, 28}));
  // Without students the space is the model's alone.
  EXPECT_EQ(Space(SpaceSpec{}, model).num_bases(), 1);
  // The largest and smallest genomes are the model's; a student's own model is its base.
  EXPECT_EQ(space.largest(), Space(SpaceSpec{}, model).largest());
  EXPECT_EQ(space.smallest().student, 0);
  Genome own;  // repair fills missing blocks with the base's own
  own.student = 1;
  own = space.repair(own);
  EXPECT_EQ(own.key().substr(0, 3), "T1:");
  EXPECT_EQ(genome_config(space.base(1), own).to_json(), space.base(1).to_json());
  std::mt19937_64 rng(1);
  // A base the space does not have is our bug, not the user's.
  EXPECT_THROW(space.base(2), core::InternalError);
  EXPECT_THROW(space.blocks(-1), core::InternalError);
  EXPECT_THROW(space.resolutions(2), core::InternalError);
  EXPECT_THROW(space.random(rng, 2), core::InternalError);
}

TEST(Space, LargestIsTheBaseAndSmallestTheCheapest) {
  const io::ViTConfig base = tiny_base(2, 2);
  const Space space(SpaceSpec{}, base);
  EXPECT_EQ(space.largest().key(), "A2M64r1w32a32m0|A2M64r1w32a32m0");
  // Everything may drop: one MLP of the narrowest width stays, at the lowest rank and bits, and
  // the smallest input side.
  EXPECT_EQ(space.smallest().key(), "R21:-M16r.25w4a8m0|--");
  EXPECT_EQ(space.smallest().resolution, space.resolutions().front());
  SpaceSpec keep;
  keep.drop_attention = keep.drop_mlp = false;
  const Space kept(keep, base);
  EXPECT_EQ(kept.smallest().key(), "R21:A1M16r.25w4a8m8|Sm8");  // block 1 shares block 0
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
  const Space space(spec, tiny_base(2, 2));  // input sides 21 and 28 (spelled 0)
  std::vector<std::vector<BlockGene>> cands;
  for (const auto& ch : space.blocks()) cands.push_back(testing::block_candidates(ch));
  size_t valid = 0;
  for (int side : {0, 21, 28, 14, 22}) {
    for (const BlockGene& x : cands[0]) {
      for (const BlockGene& y : cands[1]) {
        Genome g;
        g.resolution = side;
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

// Three bases of other depths and sides: tiny_base(3, 2) (3 blocks, 28 / patch 7: sides 21, 28),
// vit-tiny-test (2 blocks, the same sides) and vit-fmnist-student (6 blocks, patch 4: 20, 24, 28).
Space three_bases() {
  SpaceSpec spec;
  spec.students = {"vit-tiny-test", "vit-fmnist-student"};
  return Space(spec, tiny_base(3, 2));
}

TEST(Space, RepairOfTheWholeModelGenes) {
  const Space space = three_bases();
  ASSERT_EQ(space.num_bases(), 3);
  ASSERT_EQ(space.resolutions(0), (std::vector<int>{21, 28}));
  ASSERT_EQ(space.resolutions(2), (std::vector<int>{20, 24, 28}));
  std::mt19937_64 rng(2);
  // A side snaps to the base's nearest (a tie to the larger one); the base's own is spelled 0.
  Genome g = space.random(rng, 2);
  for (const auto& [side, repaired] : std::vector<std::pair<int, int>>{
           {0, 0}, {23, 24}, {22, 24}, {21, 20}, {27, 0}, {28, 0}, {1000, 0}, {-4, 20}}) {
    g.resolution = side;
    EXPECT_EQ(space.repair(g).resolution, repaired) << side;
  }
  // A base the space does not have becomes the model's; blocks of another depth are the model's
  // own.
  g.resolution = 20;
  g.student = 7;
  const Genome r = space.repair(g);
  EXPECT_EQ(r.student, 0);
  EXPECT_EQ(r.blocks, space.largest().blocks);
  EXPECT_EQ(r.resolution, 21);  // snapped to the model's sides
  Genome same_depth = space.random(rng, 0);
  const Genome fine = same_depth;
  same_depth.student = -1;
  EXPECT_EQ(space.repair(same_depth), fine);  // blocks that fit the model are kept
  // A base's depth: extra blocks go, missing ones are the base's own.
  Genome six = space.random(rng, 2);
  six.student = 1;
  const Genome two = space.repair(six);
  ASSERT_EQ(two.blocks.size(), 2u);
  EXPECT_EQ(space.repair(two), two);
  Genome one;
  one.student = 2;
  one.blocks = {gene(true, true, 1, 32)};
  const Genome filled = space.repair(one);
  ASSERT_EQ(filled.blocks.size(), 6u);
  EXPECT_EQ(filled.blocks[0], gene(true, true, 1, 32));
  for (size_t b = 1; b < 6; ++b) EXPECT_EQ(filled.blocks[b], gene(true, true, 2, 128)) << b;
}

TEST(Space, CheckNamesTheWholeModelGenes) {
  const Space space = three_bases();
  auto check = [&](const Genome& g) { return [&space, g] { space.check(g, "genome.json"); }; };
  Genome g = space.repair(Genome{2, 0, {}});
  EXPECT_NO_THROW(space.check(g, "t"));
  g.student = 3;
  expect_input_error(check(g), {"genome.json", "student", "0..2", "3"});
  g.student = -1;
  expect_input_error(check(g), {"genome.json", "student", "-1"});
  g.student = 2;
  g.resolution = 28;  // the base's own side is spelled 0
  expect_input_error(check(g), {"genome.json", "resolution", "0 (the base's own side 28)",
                                "one of [20, 24]", "28"});
  g.resolution = 22;
  expect_input_error(check(g), {"resolution", "22"});
  g.resolution = 20;
  EXPECT_NO_THROW(space.check(g, "t"));
  g.student = 1;  // 6 blocks for a 2-block base
  g.resolution = 0;
  expect_input_error(
      check(g), {"genome.json", "blocks", "2 blocks", "student 1", "vit-tiny-test", "6 blocks"});
  g.student = 0;
  g.resolution = 20;  // a side of another base
  expect_input_error(check(g), {"resolution", "one of [21]", "20"});
}

TEST(Space, OperatorsCoverEveryBaseAndSide) {
  SpaceSpec fmnist_spec;
  fmnist_spec.students = {"vit-fmnist-student"};
  const Space fmnist(fmnist_spec, io::preset("vit-fmnist"));
  const Space three = three_bases();
  for (const Space* space : {&fmnist, &three}) {
    std::set<std::pair<int, int>> seen;  // (base, side)
    std::set<std::string> keys;
    size_t base_changes = 0, mixed_parents = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      std::mt19937_64 rng(seed);
      for (int i = 0; i < 10; ++i) {
        const Genome a = space->random(rng), b = space->random(rng);
        const Genome c = space->crossover(a, b, rng);
        const Genome m = space->mutate(c, 0.3, rng);
        const Genome fixed = space->random(rng, space->num_bases() - 1);
        EXPECT_EQ(fixed.student, space->num_bases() - 1);
        base_changes += m.student != c.student;
        if (a.student != b.student) {  // blocks of other shapes do not mix: one parent whole
          ++mixed_parents;
          EXPECT_TRUE(c == a || c == b) << a.key() << " x " << b.key() << " -> " << c.key();
        } else {
          EXPECT_TRUE(c.resolution == a.resolution || c.resolution == b.resolution);
        }
        for (const Genome* g : {&a, &b, &c, &m, &fixed}) {
          EXPECT_EQ(space->repair(*g), *g) << g->key();
          EXPECT_NO_THROW(space->check(*g, "t")) << g->key();
          const io::ViTConfig cfg = genome_config(space->base(g->student), *g);
          EXPECT_EQ(cfg.image_size,
                    g->resolution != 0 ? g->resolution : space->base(g->student).image_size);
          seen.insert({g->student, cfg.image_size});
          keys.insert(g->key());
        }
      }
      EXPECT_EQ(space->mutate(space->largest(), 0.0, rng), space->largest());
    }
    // Every base at every one of its sides was drawn, and bases changed by mutation and crossover.
    size_t pairs = 0;
    for (int k = 0; k < space->num_bases(); ++k) {
      pairs += space->resolutions(k).size();
      for (int side : space->resolutions(k)) EXPECT_TRUE(seen.count({k, side})) << k << " " << side;
    }
    EXPECT_EQ(seen.size(), pairs);
    EXPECT_GT(base_changes, 0u);
    EXPECT_GT(mixed_parents, 0u);
    EXPECT_GT(keys.size(), 1000u);
    // The same seed, the same genomes.
    std::mt19937_64 r1(9), r2(9);
    for (int i = 0; i < 20; ++i) {
      const Genome x = space->mutate(space->random(r1), 0.5, r1);
      EXPECT_EQ(space->mutate(space->random(r2), 0.5, r2), x);
    }
  }
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

TEST(Genome, KeysAndJsonOfTheWholeModelGenes) {
  const Space space(SpaceSpec{}, tiny_base(2, 2));
  const Genome base = space.largest();
  ASSERT_EQ(base.key(), "A2M64r1w32a32m0|A2M64r1w32a32m0");
  Genome g = base;
  g.student = 1;
  g.resolution = 24;
  EXPECT_EQ(g.key(), "T1:R24:A2M64r1w32a32m0|A2M64r1w32a32m0");
  g.student = 0;
  EXPECT_EQ(g.key(), "R24:A2M64r1w32a32m0|A2M64r1w32a32m0");
  g.student = 2;
  g.resolution = 0;
  EXPECT_EQ(g.key(), "T2:A2M64r1w32a32m0|A2M64r1w32a32m0");
  // JSON: the genes only when set, so a genome of the model at its own side reads as before.
  const nlohmann::json jb = base.to_json();
  EXPECT_EQ(jb.size(), 1u);
  EXPECT_FALSE(jb.contains("student"));
  EXPECT_FALSE(jb.contains("resolution"));
  EXPECT_EQ(jb.dump().substr(0, 11), R"({"blocks":[)");
  EXPECT_EQ(Genome::from_json(jb, "g"), base);
  g.student = 1;
  g.resolution = 24;
  const nlohmann::json j = g.to_json();
  EXPECT_EQ(j["student"], 1);
  EXPECT_EQ(j["resolution"], 24);
  EXPECT_EQ(j["blocks"], jb["blocks"]);
  EXPECT_EQ(Genome::from_json(nlohmann::json::parse(j.dump()), "g"), g);
  g.student = 0;
  EXPECT_FALSE(g.to_json().contains("student"));
  EXPECT_EQ(Genome::from_json(g.to_json(), "g"), g);
  auto bad = j;
  bad["student"] = "1";
  expect_input_error([&] { Genome::from_json(bad, "state.json"); }, {"state.json", "student"});
  bad = j;
  bad["resolution"] = 24.5;
  expect_input_error([&] { Genome::from_json(bad, "state.json"); }, {"state.json", "resolution"});
  bad = j;
  bad["students"] = 1;
  expect_input_error([&] { Genome::from_json(bad, "state.json"); }, {"state.json", "students"});
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
  EXPECT_EQ(c.blocks[0].attn_shared_with, -1);
  EXPECT_EQ(c.blocks[1].attn_shared_with, 0);  // a run of shares: all point at its first block
  EXPECT_EQ(c.blocks[2].attn_shared_with, 0);
  EXPECT_EQ(c.blocks[2].mlp_shared_with, 0);
  EXPECT_EQ(c.blocks[3].mlp_shared_with, -1);
  EXPECT_EQ((std::vector<int>{c.blocks[0].merge_r, c.blocks[1].merge_r, c.blocks[2].merge_r,
                              c.blocks[3].merge_r}),
            (std::vector<int>{2, 4, 0, 0}));
  const auto bp = io::block_params(c);
  // A shared block keeps its LayerNorms (4 C) and biases (qkv 3 H D, proj C, fc1 M, fc2 C).
  EXPECT_EQ(bp[1], 4 * 32 + 3 * 16 + 32 + 32 + 32);
  EXPECT_EQ(bp[2], bp[1]);
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

TEST(GenomeConfig, ASmallerSideHasFewerTokensAndPositions) {
  // vit-fmnist: 28 / patch 4 = 49 patches + cls, C 128. At 24: 36 patches + cls. Only the position
  // embedding holds a parameter per token: (49 - 36) * 128 fewer.
  const io::ViTConfig base = io::preset("vit-fmnist");
  const Space space(SpaceSpec{}, base);
  Genome g = space.largest();
  g.resolution = 24;
  space.check(g, "t");
  const io::ViTConfig c = genome_config(base, g);
  EXPECT_EQ(c.image_size, 24);
  EXPECT_EQ(c.num_tokens(), 37);
  EXPECT_EQ(base.num_tokens(), 50);
  EXPECT_EQ(io::count_params(base) - io::count_params(c), (49 - 36) * 128);
  EXPECT_LT(io::count_macs(c), io::count_macs(base));
  // Everything else is the base's.
  io::ViTConfig back = c;
  back.image_size = 28;
  back.normalize("t");
  EXPECT_EQ(back.to_json(), base.to_json());
  // Sides from elsewhere: whole patches, never above the base's.
  for (int side : {26, 32, -4}) {
    g.resolution = side;
    expect_input_error([&] { genome_config(base, g); }, {"resolution", std::to_string(side)});
  }
  // With a student: the student's own base, at one of its sides.
  SpaceSpec spec;
  spec.students = {"vit-fmnist-student"};
  const Space students(spec, base);
  std::mt19937_64 rng(4);
  Genome s = students.random(rng, 1);
  s.resolution = 20;
  s = students.repair(s);
  const io::ViTConfig sc = genome_config(students.base(1), s);
  EXPECT_EQ(sc.image_size, 20);
  EXPECT_EQ(sc.embed_dim, 64);
  EXPECT_EQ(sc.num_tokens(), 26);
}

}  // namespace
}  // namespace vitopt::search
