// The search's files: every evaluated candidate (candidates.csv), the front
// (arch_pareto_<objectives>.csv), the single-technique candidates (single_techniques.csv), and
// the figure of the front against each technique alone (arch_pareto_<objectives>.png). No
// LibTorch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/evolution.h"

namespace vitopt::search {

struct SingleResult {
  std::string technique, setting, key;
  Evaluation evaluation;
  Genome genome;
};

// "top1_latency-ms" for {"top1", "latency-ms"}.
std::string objectives_tag(const std::vector<std::string>& objectives);

// Writes the CSVs atomically and renders the figure (a gnuplot failure is reported on stderr
// unless quiet, and leaves the CSVs). The figure's cost axis is the first cost objective (or
// latency when top1 is the only objective); points are feasible measured candidates.
void write_search_outputs(const std::filesystem::path& dir,
                          const std::vector<std::string>& objectives, const EvolutionState& state,
                          const std::vector<std::string>& front,
                          const std::vector<SingleResult>& singles, const Metrics& baseline,
                          bool quiet);

}  // namespace vitopt::search
