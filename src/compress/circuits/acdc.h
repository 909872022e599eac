// ACDC (Conmy et al. 2023) at node level: every node, in reverse topological order (the last
// block first; a block before its sub-blocks, a sub-block before its heads / neuron groups), is
// tried removed, and stays removed if the metric grows by less than the threshold compared with
// the current circuit. Forwards only; the blocks upstream of the node tried are still whole in
// this order, so each try reruns the model from the node's block on (cached block inputs).
#pragma once

#include <string>
#include <vector>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/circuit.h"

namespace vitopt::circuits {

struct AcdcStep {
  std::string node;
  double metric = 0;  // the metric with the node removed (on top of earlier removals)
  bool removed = false;
};

struct AcdcResult {
  Circuit circuit;
  double metric = 0;            // the final circuit's metric (KL to the full model or task loss)
  std::vector<AcdcStep> steps;  // in the order tried
  int forwards = 0;             // partial forwards over the analysis set
};

// threshold >= 0 (InputError otherwise). `nodes` from circuit_nodes (topological order).
AcdcResult acdc(AblatedModel& model, const std::vector<Node>& nodes, double threshold, bool quiet);

}  // namespace vitopt::circuits
