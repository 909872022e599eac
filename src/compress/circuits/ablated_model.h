// A model with parts of it ablated: the analysis images, the full model's logits and block
// inputs on them (computed once), the ablation values of every node, the metric of a circuit
// (KL(full || circuit) or the task loss) and the gate gradients EAP integrates. A removed node's
// output is replaced by its mean over the analysis images (and tokens, so slimming can fold it
// into a bias; the embedding keeps one mean per token), by zero, or by its output on another
// image of a different class (resample).
// Legend: B batch, N tokens, C embed dim, H heads, D head dim, M MLP width, K classes.
#pragma once

#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "compress/circuits/circuit.h"
#include "model/edit/ablation.h"
#include "model/vit.h"
#include "train/calibration.h"

namespace vitopt::circuits {

enum class Ablation { Mean, Zero, Resample };
// "mean" | "zero" | "resample"; InputError naming --ablation otherwise.
Ablation parse_ablation(const std::string& text);
const char* ablation_name(Ablation ablation);

// Resample ablation's pairing: for every image of a batch, another image of a different class
// (the first after a seeded offset, cyclically). InputError if the batch has one class only.
torch::Tensor resample_partners(const torch::Tensor& labels, std::mt19937_64& rng);

// The circuit metric summed over a batch: cross-entropy against `labels` (task loss), or
// KL(full || circuit) from the full model's log-probabilities (B, K). Shared by both levels.
torch::Tensor circuit_metric_sum(const torch::Tensor& logits, const torch::Tensor& full_log_probs,
                                 const torch::Tensor& labels, bool task_loss);

// While gate gradients are taken only the gates need them: freezes a model's weights and gives
// each its requires_grad back on destruction (also when a backward pass throws).
class FrozenWeights {
 public:
  explicit FrozenWeights(model::ViT& model);
  ~FrozenWeights();
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;

 private:
  std::vector<std::pair<torch::Tensor, bool>> saved_;
};

// Per-leaf attributions: the metric change estimated for removing each leaf (embedding, head,
// neuron). Coarser nodes add up their leaves (see eap.h).
struct LeafScores {
  double embed = 0;
  std::vector<torch::Tensor> heads;    // (H_b) per block, undefined where absent
  std::vector<torch::Tensor> neurons;  // (M_b) per block, undefined where absent
};

class AblatedModel {
 public:
  // `model` (fp32, eval mode; not copied) and the analysis batches. Resample ablation pairs every
  // image with one of another class in its batch (InputError if a batch has one class only).
  AblatedModel(model::ViT model, std::vector<train::CalibBatch> batches, Ablation ablation,
               bool task_loss, uint64_t seed);

  // Mean metric over the analysis images: KL(full || circuit) (0 for the full circuit) or the
  // circuit's cross-entropy. Blocks before `from_block` and the embedding must be kept whole in
  // `circuit`: their outputs are the cached clean ones.
  double metric(const Circuit& circuit, int from_block = 0);
  // The circuit's logits (B, K) on analysis batch `i`.
  torch::Tensor logits(const Circuit& circuit, size_t i, int from_block = 0);

  // Attributions -(1/|alphas|) sum_alpha d metric / d gate, with every gate of `path` (its removed
  // leaves) at alpha and the others at 1: a gate g outputs g * clean + (1 - g) * ablated. With
  // alphas {1} this is EAP; with midpoints of [0, 1] it is EAP-IG along the straight path from
  // ablating `path` to the clean model. `path` nullptr: every leaf moves.
  LeafScores attribute(const std::vector<double>& alphas, const Circuit* path = nullptr);

  // The mean-ablation values (also what slimming folds for resample, which has no single value).
  const edit::AblationMeans& means() const { return means_; }
  const torch::Tensor& embed_mean() const { return embed_mean_; }  // (N, C)
  Ablation ablation() const { return ablation_; }
  bool task_loss() const { return task_loss_; }
  model::ViT& model() { return model_; }
  int64_t images() const { return images_; }

 private:
  // Ablation values of batch i, in the traced forward's layout.
  struct Values {
    torch::Tensor embed;                                   // (N, C) or (B, N, C); undefined: zero
    std::vector<torch::Tensor> heads, neurons, attn, mlp;  // empty vectors: zero ablation
  };
  const Values& values(size_t i) const {
    return ablation_ == Ablation::Resample ? resampled_[i] : shared_;
  }
  void fill_trace(model::Trace& trace, const Circuit& circuit, size_t i) const;
  torch::Tensor metric_sum(const torch::Tensor& logits, size_t i) const;  // summed over images

  model::ViT model_;
  std::vector<train::CalibBatch> batches_;
  Ablation ablation_;
  bool task_loss_;
  int64_t images_ = 0;
  std::vector<torch::Tensor> clean_log_probs_;           // per batch (B, K)
  std::vector<std::vector<torch::Tensor>> block_input_;  // per batch, per block (B, N, C)
  edit::AblationMeans means_;
  torch::Tensor embed_mean_;
  Values shared_;                  // mean / zero ablation
  std::vector<Values> resampled_;  // resample: per batch
};

}  // namespace vitopt::circuits
