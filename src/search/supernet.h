// Supernet fine-tuning (`vitopt search --supernet-epochs`): trains the weights every candidate
// inherits so that sub-networks taken from them are accurate without their own training. Each
// step runs the sandwich rule of once-for-all / AutoFormer: the largest structure, the smallest
// and `random_per_step` random ones of the space, each as the full model with the removed heads,
// neurons and sub-blocks gated to their mean outputs (exactly what the slimmed candidate
// computes), each distilled from the original model's logits (in-place distillation), the
// largest also from the labels. Ranks, bits, sharing and merging are applied on top afterwards.
#pragma once

#include <nlohmann/json.hpp>

#include "compress/prune/finetune.h"
#include "model/vit.h"
#include "search/candidate.h"
#include "search/space.h"

namespace vitopt::search {

struct SupernetOptions {
  double epochs = 0;        // fractional allowed
  int random_per_step = 2;  // random structures per step besides the largest and smallest
  uint64_t seed = 0;
};

// Trains `parent` in place (the teacher is not trained; it may be the original model). The
// heads/neuron orders of `inheritance` stay fixed; its means are re-measured on the trained
// parent over `calib` afterwards. Returns the training history.
nlohmann::json train_supernet(model::ViT& parent, model::ViT& teacher, const Space& space,
                              Inheritance& inheritance, const std::vector<train::CalibBatch>& calib,
                              const prune::FinetuneOptions& finetune, const SupernetOptions& o);

}  // namespace vitopt::search
