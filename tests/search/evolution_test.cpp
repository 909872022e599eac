// The evolutionary loop on a small space with a synthetic objective whose Pareto front is known by
// brute force: the search finds exactly that front, never reports a genome over budget, evaluates
// each genome once, is reproducible from its seed and resumes exactly from a saved state.
#include "search/evolution.h"

#include <gtest/gtest.h>

#include <map>
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

// Three blocks of vit-tiny-test: 1 or 2 heads or none, MLP 32 or 64, int8 or fp32 weights, shared
// or not, at the model's own input side. About 2000 valid genomes, a front of 12.
struct Fixture {
  Fixture() = default;
  explicit Fixture(const SpaceSpec& s) : space(s, base) {}

  io::ViTConfig base = tiny_base(3, 2);
  Space space{spec(), base};
  double param_limit = 0.7 * static_cast<double>(io::count_params(base));

  static SpaceSpec spec() {
    SpaceSpec s;
    s.drop_mlp = false;
    s.heads = {1, 2};
    s.mlp_step = 32;
    s.mlp_min_ratio = 0.5;
    s.rank_ratios = {1};
    s.weight_bits = {8, 32};
    s.input_bits = {32};
    s.merge_r = {0};
    s.resolution = {1.0};  // the whole-model genes have a test of their own
    return s;
  }

  // Cost: the weights' bytes at their bits (exact, from the genome's config). Damage: a made-up
  // accuracy loss per removed part, larger in later blocks so that no two blocks are alike, plus
  // 4 for the student and 1.5 per patch row a smaller side loses. Budget: at most 70% of the
  // model's parameters.
  Evaluation evaluate(const Genome& g) const {
    const io::ViTConfig& own = space.base(g.student);
    const io::ViTConfig c = genome_config(own, g);
    const auto bp = io::block_params(c);
    double bytes = 4.0 * static_cast<double>(io::other_params(c)), damage = 0;
    for (size_t b = 0; b < g.blocks.size(); ++b) {
      const BlockGene& x = g.blocks[b];
      bytes += static_cast<double>(bp[b]) * x.wbits / 8.0;
      const double d = (x.attn ? (2 - x.heads) * 1.0 : 2.5) + (64 - x.mlp_dim) / 32.0 * 1.5 +
                       (x.wbits < 32 ? 0.6 : 0) + (x.share ? 1.2 : 0);
      damage += d * (1 + 0.35 * static_cast<double>(b));
    }
    damage += 4.0 * g.student + 1.5 * (own.grid() - c.grid());
    Evaluation e;
    e.score.objectives = {bytes, damage};
    e.score.violation = std::max(0.0, static_cast<double>(io::count_params(c)) / param_limit - 1);
    e.metrics = {{"params", io::count_params(c)}};
    return e;
  }

  // The front by brute force: every valid genome evaluated, the same definition of the front.
  std::vector<std::string> true_front() const {
    EvolutionState all;
    for (const Genome& g : all_genomes(space)) all.archive[g.key()] = {g, evaluate(g), 0};
    return pareto_front(all);
  }

  static EvolutionOptions options(uint64_t seed = 11) {
    EvolutionOptions o;
    o.population = 32;
    o.generations = 30;
    o.seed = seed;
    return o;
  }
};

TEST(Evolution, FindsTheBruteForceFrontWithinBudget) {
  const Fixture f;
  const auto front = f.true_front();
  ASSERT_GE(front.size(), 8u);  // a real trade-off, not one winner
  std::map<std::string, int> calls;
  const EvolutionState s = evolve(f.space, Fixture::options(), [&](const Genome& g) {
    ++calls[g.key()];
    f.space.check(g, "evaluated genome");  // only valid genomes are evaluated
    return f.evaluate(g);
  });
  EXPECT_EQ(s.generation, 29);
  EXPECT_EQ(pareto_front(s), front);
  // The archive: each distinct genome evaluated once, budget-breakers kept but never on the front.
  EXPECT_EQ(calls.size(), s.archive.size());
  for (const auto& [key, n] : calls) EXPECT_EQ(n, 1) << key;
  size_t over = 0;
  for (const auto& [key, e] : s.archive) over += e.evaluation.score.violation > 0;
  EXPECT_GT(over, 0u);
  for (const auto& key : pareto_front(s))
    EXPECT_EQ(s.archive.at(key).evaluation.score.violation, 0.0) << key;
  // The population: the requested size, distinct genomes, all in the archive.
  EXPECT_EQ(s.population.size(), 32u);
  EXPECT_EQ(std::set<std::string>(s.population.begin(), s.population.end()).size(), 32u);
  // The front is sorted by the first objective.
  for (size_t i = 1; i < front.size(); ++i)
    EXPECT_LE(s.archive.at(front[i - 1]).evaluation.score.objectives[0],
              s.archive.at(front[i]).evaluation.score.objectives[0]);
}

// The whole-model genes too: the model at 21 or 28 pixels and the 2-block vit-tiny-test as a
// student (two bases of other depths), so crossover meets parents of other bases and mutation
// changes bases. The front by brute force holds both bases and both sides.
TEST(Evolution, FindsTheBruteForceFrontAcrossBasesAndSides) {
  SpaceSpec spec = Fixture::spec();
  spec.resolution = {1.0, 0.75};
  spec.students = {"vit-tiny-test"};
  const Fixture f(spec);
  ASSERT_EQ(f.space.num_bases(), 2);
  ASSERT_EQ(f.space.resolutions(), (std::vector<int>{21, 28}));
  const auto front = f.true_front();      // 15 genomes of about 4400
  std::set<std::pair<bool, bool>> kinds;  // (student, side 21) on the front
  for (const auto& key : front)
    kinds.insert({key.rfind("T1:", 0) == 0, key.find("R21:") != std::string::npos});
  ASSERT_EQ(kinds.size(), 4u) << "the front should span every base and side";
  std::map<std::string, int> calls;
  // (A seeded heuristic: with this seed it reaches the exact front in 30 generations, as 9 of
  // the seeds 1-24 do since shared blocks count their own LayerNorms and biases.)
  const EvolutionState s = evolve(f.space, Fixture::options(5), [&](const Genome& g) {
    ++calls[g.key()];
    f.space.check(g, "evaluated genome");
    return f.evaluate(g);
  });
  EXPECT_EQ(pareto_front(s), front);
  for (const auto& [key, n] : calls) EXPECT_EQ(n, 1) << key;
  for (const auto& key : pareto_front(s))
    EXPECT_EQ(s.archive.at(key).evaluation.score.violation, 0.0) << key;
}

TEST(Evolution, GenerationZeroHoldsBothEndsOfTheSpace) {
  const Fixture f;
  auto o = Fixture::options();
  o.generations = 1;
  int generations_seen = 0;
  const EvolutionState s = evolve(
      f.space, o, [&](const Genome& g) { return f.evaluate(g); }, {},
      [&](const EvolutionState& st) { EXPECT_EQ(st.generation, generations_seen++); });
  EXPECT_EQ(generations_seen, 1);
  ASSERT_EQ(s.population.size(), 32u);
  EXPECT_EQ(s.population[0], f.space.largest().key());
  EXPECT_EQ(s.population[1], f.space.smallest().key());
  EXPECT_EQ(s.archive.size(), 32u);
  for (const auto& [key, e] : s.archive) EXPECT_EQ(e.generation, 0);
}

TEST(Evolution, SameSeedSameSearch) {
  const Fixture f;
  const EvaluateFn eval = [&](const Genome& g) { return f.evaluate(g); };
  auto o = Fixture::options(5);
  o.generations = 8;
  const auto a = evolve(f.space, o, eval).to_json();
  EXPECT_EQ(evolve(f.space, o, eval).to_json(), a);
  o.seed = 6;
  EXPECT_NE(evolve(f.space, o, eval).to_json(), a);
}

TEST(Evolution, ResumesExactlyFromAStateSavedAfterAnyGeneration) {
  const Fixture f;
  int calls = 0;
  const EvaluateFn eval = [&](const Genome& g) {
    ++calls;
    return f.evaluate(g);
  };
  auto o = Fixture::options(3);
  o.generations = 10;
  std::vector<std::string> saved;  // the state after each generation, as a file would hold it
  const EvolutionState full = evolve(
      f.space, o, eval, {}, [&](const EvolutionState& s) { saved.push_back(s.to_json().dump()); });
  ASSERT_EQ(saved.size(), 10u);
  const int full_calls = calls;
  for (int k : {0, 5, 9}) {
    SCOPED_TRACE(k);
    const EvolutionState state = EvolutionState::from_json(nlohmann::json::parse(saved[k]), "s");
    EXPECT_EQ(state.generation, k);
    EXPECT_EQ(state.to_json().dump(), saved[k]);  // JSON round trip is exact
    calls = 0;
    const EvolutionState resumed = evolve(f.space, o, eval, state);
    EXPECT_EQ(resumed.to_json(), full.to_json());
    // Only genomes new after generation k are evaluated.
    EXPECT_EQ(static_cast<size_t>(calls), full.archive.size() - state.archive.size());
  }
  EXPECT_EQ(full_calls, static_cast<int>(full.archive.size()));
  // A longer run continues where a shorter one stopped, as if it had never stopped.
  auto shorter = o;
  shorter.generations = 6;
  EXPECT_EQ(evolve(f.space, o, eval, evolve(f.space, shorter, eval)).to_json(), full.to_json());
}

TEST(Evolution, StateJsonIsStrict) {
  const Fixture f;
  auto o = Fixture::options();
  o.generations = 1;
  const auto j = evolve(f.space, o, [&](const Genome& g) { return f.evaluate(g); }).to_json();
  auto bad = j;
  bad["population"][0] = "A9";
  expect_input_error([&] { EvolutionState::from_json(bad, "state.json"); },
                     {"state.json", "population[0]", "A9"});
  bad = j;
  bad["extra"] = 1;
  expect_input_error([&] { EvolutionState::from_json(bad, "state.json"); }, {"extra"});
  bad = j;
  const std::string first = j["archive"].begin().key();
  bad["archive"]["X"] = bad["archive"][first];
  expect_input_error([&] { EvolutionState::from_json(bad, "state.json"); }, {"archive.X"});
  bad = j;
  bad["archive"][first]["objectives"][0] = "1";
  expect_input_error([&] { EvolutionState::from_json(bad, "state.json"); }, {"objectives[0]"});
}

TEST(Evolution, RefusesBadOptions) {
  const Fixture f;
  const EvaluateFn eval = [&](const Genome& g) { return f.evaluate(g); };
  auto o = Fixture::options();
  o.population = 3;
  expect_input_error([&] { evolve(f.space, o, eval); }, {"population", "at least 4"});
  o = Fixture::options();
  o.generations = 0;
  expect_input_error([&] { evolve(f.space, o, eval); }, {"generations"});
  o = Fixture::options();
  o.mutation = 1.5;
  expect_input_error([&] { evolve(f.space, o, eval); }, {"mutation"});
}

TEST(Evolution, ATinySpaceStillFillsThePopulation) {
  // Two blocks that may only keep or drop their attention: 2 x 2 = 4 genomes.
  SpaceSpec s = Fixture::spec();
  s.drop_mlp = false;
  s.heads = {2};
  s.mlp_min_ratio = 1;
  s.weight_bits = {32};
  s.share = false;
  const Space space(s, tiny_base(2, 2));
  const size_t n = all_genomes(space).size();
  ASSERT_LT(n, 8u);
  EvolutionOptions o;
  o.population = 8;
  o.generations = 3;
  int calls = 0;
  const EvolutionState st = evolve(space, o, [&](const Genome& g) {
    ++calls;
    Evaluation e;
    e.score.objectives = {static_cast<double>(g.key().size())};
    return e;
  });
  EXPECT_EQ(st.population.size(), 8u);
  EXPECT_EQ(st.archive.size(), n);
  EXPECT_EQ(static_cast<size_t>(calls), n);
}

}  // namespace
}  // namespace vitopt::search
