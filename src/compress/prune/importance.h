// Importance (Torch-Pruning's "how much does this part matter"): one interface for every
// criterion, scoring single weights (unstructured and N:M masks) and/or coupled groups (heads,
// MLP neurons, whole sub-blocks; see model/edit/plan.h), and a registry by name. A new criterion
// is one importance_<name>.cpp implementing Importance plus one line in importance_registry.cpp.
// Higher score = more important.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "model/edit/masks.h"
#include "model/vit.h"
#include "train/calibration.h"

namespace vitopt::prune {

using edit::TensorMap;
using train::CalibBatch;

// Per-block group scores. heads[b] (H_b), neurons[b] (M_b): undefined where the sub-block is
// absent or that kind was not asked for; attn[b] / mlp[b]: NaN likewise.
struct GroupScores {
  std::vector<torch::Tensor> heads, neurons;
  std::vector<double> attn, mlp;
  static GroupScores empty(int depth);  // undefined / NaN everywhere
};
struct ScoreKinds {
  bool heads = false, neurons = false, subblocks = false;
};

class Importance {
 public:
  virtual ~Importance() = default;
  virtual std::string name() const = 0;
  // Whether the scores need calibration batches (a data-free criterion ignores them).
  virtual bool needs_data() const = 0;
  virtual bool scores_weights() const { return false; }
  virtual bool scores_groups() const { return false; }
  // Per-weight scores (out, in) of every edit::prunable_linears layer. Already-masked weights
  // must score no higher than any live one, so that they stay pruned.
  virtual TensorMap weight_scores(model::ViT& model, const std::vector<CalibBatch>& calib);
  // Group scores of the kinds asked for. The model is in eval mode when this is called.
  virtual GroupScores group_scores(model::ViT& model, ScoreKinds kinds,
                                   const std::vector<CalibBatch>& calib, bool quiet);
};

// The registered criterion `name`; InputError listing the names when unknown.
std::unique_ptr<Importance> make_importance(const std::string& name);
std::vector<std::string> importance_names();  // registration order
// The names that score weights / groups (for help texts and validation messages).
std::vector<std::string> weight_importance_names();
std::vector<std::string> group_importance_names();

// Group scores by a criterion: eval mode during scoring, the model's mode restored.
GroupScores group_scores(model::ViT& model, const std::string& criterion, ScoreKinds kinds,
                         const std::vector<CalibBatch>& calib, bool quiet = true);
// Weight scores by a criterion (mode handled likewise).
TensorMap weight_scores(model::ViT& model, const std::string& criterion,
                        const std::vector<CalibBatch>& calib);

// Mean cross-entropy of the model on the calibration batches, optionally through a trace
// (gates applied). No gradients. InputError if the set is empty.
double calibration_loss(model::ViT& model, const std::vector<CalibBatch>& calib,
                        model::Trace* trace = nullptr);
// Images in the calibration set; InputError if there are none.
int64_t calibration_count(const std::vector<CalibBatch>& calib);

}  // namespace vitopt::prune
