// The searches at edge level: ACDC over the residual-stream edges (readers in reverse topological
// order, each reader's incoming edges from the latest writer back; a head or MLP that no longer
// writes anywhere loses its incoming edges untested) and keeping the highest |score| edges.
#pragma once

#include <vector>

#include "compress/circuits/acdc.h"
#include "compress/circuits/eap.h"
#include "compress/circuits/edge_graph.h"
#include "compress/circuits/edge_model.h"

namespace vitopt::circuits {

struct EdgeAcdcResult {
  EdgeMask mask;
  double metric = 0;
  std::vector<AcdcStep> steps;  // node: "writer -> reader"
  // Per edge (readers x writers, row-major): how much the metric grew when it was tried (0 for
  // edges never tried), the quantity compared with the threshold.
  std::vector<double> scores;
  int forwards = 0;
};

// threshold >= 0 (InputError otherwise).
EdgeAcdcResult acdc_edges(EdgeModel& model, double threshold, bool quiet);

// The mask keeping round(keep_ratio * edges) edges with the highest |score| (all ranked together,
// or per reader kind: q, k, v, mlp, logits). keep_ratio in (0, 1] (InputError otherwise).
EdgeMask keep_top_edges(const EdgeGraph& graph, const std::vector<double>& scores,
                        double keep_ratio, Ranking ranking);

}  // namespace vitopt::circuits
