// ACDC (Conmy et al. 2023) at node level: every node, in reverse topological order (the last
// block first; a block before its sub-blocks, a sub-block before its heads / neuron groups), is
// tried removed, and stays removed if the metric grows by less than the threshold compared with
// the current circuit. Forwards only: on LibTorch the blocks upstream of the node tried are still
// whole in this order, so each try reruns the model from the node's block on (cached block
// inputs); on the runtime (RuntimeMetric) each try runs the trial's slimmed model.
#pragma once

#include <functional>
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
  double full_metric = 0;       // the full model's metric on the same engine
  double metric = 0;            // the final circuit's metric (KL to the full model or task loss)
  std::vector<AcdcStep> steps;  // in the order tried
  int forwards = 0;             // partial forwards over the analysis set
};

// The metric of a circuit whose blocks before `from_block` (and the embedding, unless 0) are whole.
using CircuitMetric = std::function<double(const Circuit& circuit, int from_block)>;

// threshold >= 0 (InputError otherwise). `nodes` from circuit_nodes (topological order).
AcdcResult acdc(const io::ViTConfig& config, const CircuitMetric& metric,
                const std::vector<Node>& nodes, double threshold, bool quiet);
// On LibTorch: model.metric.
AcdcResult acdc(AblatedModel& model, const std::vector<Node>& nodes, double threshold, bool quiet);

}  // namespace vitopt::circuits
