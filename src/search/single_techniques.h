// The single-technique genomes the search's front is compared with: each compression method of
// the space alone, applied uniformly to every block at each of its settings (structured pruning at
// 75/50/25% of heads and neurons, each quantization width, each low-rank ratio, each merging r).
// No LibTorch.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "search/space.h"

namespace vitopt::search {

struct TechniqueGenome {
  std::string technique;  // "prune", "quantize", "factorize", "merge"
  std::string setting;    // e.g. "50%", "w8a8", "rank 0.5", "r 4"
  Genome genome;
};

// Every single-technique genome the space allows (valid, distinct within a technique).
std::vector<TechniqueGenome> single_technique_genomes(const Space& space);

}  // namespace vitopt::search
