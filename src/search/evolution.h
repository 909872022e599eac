// The evolutionary loop of the architecture search (no LibTorch): NSGA-II over genomes of a
// Space with an evaluation callback, an archive that evaluates each distinct genome once, seeded
// and resumable (the whole state is JSON; the random generator of a generation is derived from the
// seed and the generation number, so a resumed search continues exactly as an uninterrupted one).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/nsga2.h"
#include "search/space.h"

namespace vitopt::search {

struct EvolutionOptions {
  int population = 32;     // >= 4
  int generations = 12;    // >= 1 (generation 0 is the initial population)
  double crossover = 0.9;  // probability a child is a crossover of two parents (else a copy)
  double mutation = 0.1;   // per-gene mutation probability
  uint64_t seed = 0;
};

// What an evaluation returns: the objectives/violation NSGA-II ranks by, plus any measurements the
// caller wants kept with the genome (written to the CSVs and the state).
struct Evaluation {
  Scored score;
  nlohmann::json metrics = nlohmann::json::object();
};

struct ArchiveEntry {
  Genome genome;
  Evaluation evaluation;
  int generation = 0;  // first generation it was evaluated in
};

// The search's whole state, JSON round trip.
struct EvolutionState {
  int generation = -1;                          // last completed generation (-1: none)
  std::vector<std::string> population;          // keys of the current population (into archive)
  std::map<std::string, ArchiveEntry> archive;  // every genome evaluated, by Genome::key()
  nlohmann::json to_json() const;
  static EvolutionState from_json(const nlohmann::json& j, const std::string& source);
};

using EvaluateFn = std::function<Evaluation(const Genome&)>;
// Called after each completed generation with the state (to save it, print progress...).
using GenerationFn = std::function<void(const EvolutionState&)>;

// Runs generations state.generation + 1 .. options.generations - 1. Generation 0: the largest and
// smallest genomes plus random ones (repaired, distinct where the space allows). Each later
// generation: `population` children by tournament selection, crossover and mutation (a child
// already in the population is re-mutated a few times to keep diversity), evaluated (archive hits
// are not re-evaluated), then select_survivors over parents + children. Returns the final state.
EvolutionState evolve(const Space& space, const EvolutionOptions& options, const EvaluateFn& eval,
                      EvolutionState state = {}, const GenerationFn& on_generation = {});

// Keys of the archive's first front (feasible entries only), ascending by the first objective.
std::vector<std::string> pareto_front(const EvolutionState& state);

}  // namespace vitopt::search
