// The evolutionary loop (see evolution.h): NSGA-II generations over an archive of evaluated
// genomes. Everything random in generation g comes from a generator seeded by (seed, g) alone, and
// the population's order is part of the state, so stopping after any generation and resuming from
// its JSON replays exactly what an uninterrupted run does.
#include "search/evolution.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/json_util.h"
#include "io/json_fields.h"

namespace vitopt::search {
namespace {

using nlohmann::json;
namespace jf = io::json_fields;

// Attempts to make a child that is new to the population before accepting a duplicate, and
// random draws per wanted member of generation 0 before accepting duplicates (a tiny space).
constexpr int kChildRetries = 8;
constexpr int kInitialDrawsPerMember = 20;
constexpr size_t kGenesPerBlock = 9;  // BlockGene's fields

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::mt19937_64 generation_rng(uint64_t seed, int generation) {
  return std::mt19937_64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(generation)));
}

bool chance(double p, std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
}

void check_options(const EvolutionOptions& o) {
  auto need = [](bool ok, const char* field, const char* expected, const std::string& actual) {
    if (!ok) core::throw_bad_field("search options", field, expected, actual);
  };
  need(o.population >= 4, "population", "at least 4", std::to_string(o.population));
  need(o.generations >= 1, "generations", "at least 1", std::to_string(o.generations));
  need(o.crossover >= 0 && o.crossover <= 1, "crossover", "a probability in [0, 1]",
       fmt::format("{}", o.crossover));
  need(o.mutation >= 0 && o.mutation <= 1, "mutation", "a probability in [0, 1]",
       fmt::format("{}", o.mutation));
}

// The archive and population of a running search.
class Search {
 public:
  Search(const EvaluateFn& eval, EvolutionState& state) : eval_(eval), state_(state) {}

  // Evaluates g unless the archive has it; returns its key.
  std::string evaluate(const Genome& g, int generation) {
    std::string key = g.key();
    if (!state_.archive.count(key)) state_.archive[key] = {g, eval_(g), generation};
    return key;
  }
  const Genome& genome(const std::string& key) const { return entry(key).genome; }
  std::vector<Scored> scores(const std::vector<std::string>& keys) const {
    std::vector<Scored> out;
    for (const auto& k : keys) out.push_back(entry(k).evaluation.score);
    return out;
  }

 private:
  const ArchiveEntry& entry(const std::string& key) const {
    const auto it = state_.archive.find(key);
    if (it == state_.archive.end())
      core::throw_input("search state: population member {} is not in the archive", key);
    return it->second;
  }
  const EvaluateFn& eval_;
  EvolutionState& state_;
};

// Generation 0: the two ends of the space, then random genomes (distinct where possible).
std::vector<std::string> initial_population(const Space& space, const EvolutionOptions& o,
                                            Search& search) {
  std::mt19937_64 rng = generation_rng(o.seed, 0);
  const size_t n = static_cast<size_t>(o.population);
  std::vector<Genome> pop;
  std::set<std::string> keys;
  auto add = [&](const Genome& g) {
    if (keys.insert(g.key()).second) pop.push_back(g);
  };
  add(space.largest());
  add(space.smallest());
  for (size_t draws = 0; pop.size() < n && draws < n * kInitialDrawsPerMember; ++draws)
    add(space.random(rng));
  while (pop.size() < n) pop.push_back(space.random(rng));  // the space has fewer genomes
  std::vector<std::string> out;
  for (const Genome& g : pop) out.push_back(search.evaluate(g, 0));
  return out;
}

// One later generation: children by tournament, crossover and mutation, then the elitist cut.
std::vector<std::string> next_population(const Space& space, const EvolutionOptions& o,
                                         int generation, const std::vector<std::string>& parents,
                                         Search& search) {
  std::mt19937_64 rng = generation_rng(o.seed, generation);
  const Ranking ranking = rank_points(search.scores(parents));
  const size_t genes = kGenesPerBlock * space.blocks().size();
  // Re-mutation changes at least about one gene even when the mutation rate is tiny.
  const double retry_rate = std::max(o.mutation, 1.0 / static_cast<double>(genes));
  std::set<std::string> taken(parents.begin(), parents.end());
  std::vector<Genome> children;
  for (int i = 0; i < o.population; ++i) {
    const bool cross = chance(o.crossover, rng);
    const Genome& a = search.genome(parents[static_cast<size_t>(tournament(ranking, rng))]);
    Genome child = a;
    if (cross) {
      const Genome& b = search.genome(parents[static_cast<size_t>(tournament(ranking, rng))]);
      child = space.crossover(a, b, rng);
    }
    child = space.mutate(child, o.mutation, rng);
    for (int t = 0; t < kChildRetries && taken.count(child.key()); ++t)
      child = space.mutate(child, retry_rate, rng);
    taken.insert(child.key());
    children.push_back(std::move(child));
  }
  std::vector<std::string> all = parents;
  for (const Genome& c : children) all.push_back(search.evaluate(c, generation));
  // Survivors among distinct genomes; only a space smaller than the population keeps duplicates.
  std::vector<std::string> pool;
  std::set<std::string> seen;
  for (const auto& k : all)
    if (seen.insert(k).second) pool.push_back(k);
  if (pool.size() < static_cast<size_t>(o.population)) pool = all;
  std::vector<std::string> out;
  for (int i : select_survivors(search.scores(pool), static_cast<size_t>(o.population)))
    out.push_back(pool[static_cast<size_t>(i)]);
  return out;
}

json evaluation_json(const ArchiveEntry& e) {
  return json{{"genome", e.genome.to_json()},
              {"objectives", e.evaluation.score.objectives},
              {"violation", e.evaluation.score.violation},
              {"metrics", e.evaluation.metrics},
              {"generation", e.generation}};
}

const std::vector<std::string> kStateFields = {"generation", "population", "archive"};
const std::vector<std::string> kEntryFields = {"genome", "objectives", "violation", "metrics",
                                               "generation"};

}  // namespace

json EvolutionState::to_json() const {
  json a = json::object();
  for (const auto& [key, e] : archive) a[key] = evaluation_json(e);
  return json{{"generation", generation}, {"population", population}, {"archive", a}};
}

EvolutionState EvolutionState::from_json(const json& j, const std::string& source) {
  jf::check_fields(j, kStateFields, source, "");
  EvolutionState s;
  s.generation = jf::as_int(jf::require(j, "generation", source, ""), source, "generation");
  if (s.generation < -1)
    core::throw_bad_field(source, "generation", ">= -1", std::to_string(s.generation));
  const json& a = jf::require(j, "archive", source, "");
  if (!a.is_object())
    core::throw_bad_field(source, "archive", "a JSON object", core::json_type_name(a));
  for (const auto& item : a.items()) {
    const std::string where = "archive." + item.key();
    const json& v = item.value();
    jf::check_fields(v, kEntryFields, source, where);
    ArchiveEntry e;
    e.genome = Genome::from_json(jf::require(v, "genome", source, where), source);
    if (e.genome.key() != item.key())
      core::throw_bad_field(source, where, "the key of its genome", e.genome.key());
    const json& obj = jf::require(v, "objectives", source, where);
    if (!obj.is_array())
      core::throw_bad_field(source, where + ".objectives", "a JSON array of numbers",
                            core::json_type_name(obj));
    for (size_t i = 0; i < obj.size(); ++i)
      e.evaluation.score.objectives.push_back(
          jf::as_double(obj[i], source, fmt::format("{}.objectives[{}]", where, i)));
    e.evaluation.score.violation = jf::get_or(v, "violation", 0.0, source, where, jf::as_double);
    if (const json* m = jf::find(v, "metrics")) e.evaluation.metrics = *m;
    e.generation = jf::get_or(v, "generation", 0, source, where, jf::as_int);
    s.archive.emplace(item.key(), std::move(e));
  }
  const json& p = jf::require(j, "population", source, "");
  if (!p.is_array())
    core::throw_bad_field(source, "population", "a JSON array of keys", core::json_type_name(p));
  for (size_t i = 0; i < p.size(); ++i) {
    const std::string field = fmt::format("population[{}]", i);
    std::string key = jf::as_string(p[i], source, field);
    if (!s.archive.count(key))
      core::throw_bad_field(source, field, "a key of the archive", "'" + key + "'");
    s.population.push_back(std::move(key));
  }
  return s;
}

EvolutionState evolve(const Space& space, const EvolutionOptions& options, const EvaluateFn& eval,
                      EvolutionState state, const GenerationFn& on_generation) {
  check_options(options);
  if (state.generation >= 0 && state.population.empty())
    core::throw_input("search state: generation {} has no population", state.generation);
  Search search(eval, state);
  auto done = [&](int generation) {
    state.generation = generation;
    if (on_generation) on_generation(state);
  };
  if (state.generation < 0) {
    state.population = initial_population(space, options, search);
    done(0);
  }
  for (int g = state.generation + 1; g < options.generations; ++g) {
    state.population = next_population(space, options, g, state.population, search);
    done(g);
  }
  return state;
}

std::vector<std::string> pareto_front(const EvolutionState& state) {
  std::vector<std::string> keys;
  std::vector<Scored> points;
  for (const auto& [key, e] : state.archive) {
    if (e.evaluation.score.violation > 0) continue;
    keys.push_back(key);
    points.push_back(e.evaluation.score);
  }
  if (points.empty()) return {};
  std::vector<int> front = non_dominated_fronts(points).front();
  std::sort(front.begin(), front.end(), [&](int a, int b) {
    const auto& oa = points[static_cast<size_t>(a)].objectives;
    const auto& ob = points[static_cast<size_t>(b)].objectives;
    return oa != ob ? oa < ob : keys[static_cast<size_t>(a)] < keys[static_cast<size_t>(b)];
  });
  std::vector<std::string> out;
  for (int i : front) out.push_back(keys[static_cast<size_t>(i)]);
  return out;
}

}  // namespace vitopt::search
