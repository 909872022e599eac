// A circuit turned into a genuinely smaller model: the removed heads, neurons and sub-blocks cut
// out by the structure-edit layer (model/edit/slim.h) with their ablation folded into biases, so
// the slimmed model computes what the ablated one did: exactly for mean and zero ablation; for
// resample ablation (no single value to fold) the mean is folded. A removed embedding becomes
// its per-token mean (or zero) held in the position embedding.
#pragma once

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/circuit.h"
#include "model/edit/plan.h"
#include "model/vit.h"

namespace vitopt::circuits {

// The structure plan that keeps what `circuit` keeps.
edit::StructurePlan circuit_plan(const Circuit& circuit);

// The slimmed model of `circuit` over `ablated`'s model (which is unchanged).
model::ViT slim_circuit(AblatedModel& ablated, const Circuit& circuit);

}  // namespace vitopt::circuits
