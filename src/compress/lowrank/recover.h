// Recovering accuracy after a weight edit (factorization, sharing): fine-tuning on the training
// split, optionally with the unedited model as teacher ("weight distillation": its logits, hidden
// states and attention maps), through the pruning layer's fine-tuning and the Distiller's loss.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "compress/prune/finetune.h"
#include "model/vit.h"

namespace vitopt::lowrank {

// Trains `student` in place for `epochs` (> 0). `teacher` (not trained; may be the caller's
// original model) with `modes` (distill::parse_modes, e.g. "logit,feature,attention") turns on
// distillation; no teacher or empty modes: plain fine-tuning. Returns the training history.
nlohmann::json recover(model::ViT& student, std::optional<model::ViT> teacher,
                       const std::string& modes, const prune::FinetuneOptions& options,
                       double epochs);

}  // namespace vitopt::lowrank
