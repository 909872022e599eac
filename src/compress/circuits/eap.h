// Edge attribution patching at node level: a node's score is the metric change its removal is
// estimated to cause, (ablated - clean) . d metric / d activation, from gate gradients
// (AblatedModel::attribute): one forward and one backward at the clean point (EAP), or the mean
// over `ig_steps` points of the straight path from ablated to clean (EAP-IG; needed with the KL
// metric, whose gradient at the clean point is zero). Sub-blocks, blocks and neuron groups add up
// their leaves' scores. keep_top keeps the highest |score| heads and neuron groups.
#pragma once

#include <vector>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/circuit.h"

namespace vitopt::circuits {

// The path points: {1} for steps 0 (plain EAP), else the midpoints (k + 0.5) / steps.
std::vector<double> ig_alphas(int steps);

// One score per node of `nodes` (same order) from the leaves' attributions.
std::vector<double> node_scores(const std::vector<Node>& nodes, const LeafScores& leaves);

enum class Ranking { Global, PerType };
Ranking parse_ranking(const std::string& text);  // "global" | "per-type"; InputError otherwise

// The circuit that keeps round(keep_ratio * count) of the heads and neuron groups with the
// highest |score| (all of them ranked together, or heads and groups each on their own); a
// sub-block left without heads / neurons is removed. The embedding is the circuit's input and
// always kept. keep_ratio in (0, 1] (InputError otherwise).
Circuit keep_top(const io::ViTConfig& config, const std::vector<Node>& nodes,
                 const std::vector<double>& scores, double keep_ratio, Ranking ranking);

}  // namespace vitopt::circuits
