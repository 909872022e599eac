// The forward of the residual-stream graph (edge_graph.h) with edges removed: every reader takes
// the sum of its writers' outputs, where a removed edge carries the writer's ablation value
// instead (mean over the analysis images and tokens, zero, or its output on another image of a
// different class), so each head's q, k and v and each MLP sees its own residual stream. With
// every edge kept it is the model's forward. The metric (KL to the full model or task loss) and
// the edge-gate gradients EAP integrates, as for nodes (ablated_model.h).
// Legend: B batch, N tokens, C embed dim, H heads, D head dim, R readers, W writers.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "compress/circuits/ablated_model.h"
#include "compress/circuits/edge_graph.h"
#include "model/vit.h"
#include "train/calibration.h"

namespace vitopt::circuits {

class EdgeModel {
 public:
  // `model` (fp32, dense, eval mode; not copied) and the analysis batches; resample pairs images
  // as AblatedModel does.
  EdgeModel(model::ViT model, std::vector<train::CalibBatch> batches, Ablation ablation,
            bool task_loss, uint64_t seed);

  const EdgeGraph& graph() const { return graph_; }
  // Mean metric over the analysis images with the edges of `mask` kept. Readers in blocks before
  // `from_block` must have all their edges: the writers' clean outputs are reused up to there.
  double metric(const EdgeMask& mask, int from_block = 0);
  // Logits (B, K) of batch i with `gates` (R, W) weighting each edge between clean (1) and
  // ablated (0).
  torch::Tensor logits(const torch::Tensor& gates, size_t i, int from_block = 0);
  // Edge attributions (R * W, row-major; 0 where no edge): -(1/|alphas|) sum over alphas of
  // d metric / d gate with every edge's gate at alpha (EAP: {1}; EAP-IG: midpoints).
  std::vector<double> attribute(const std::vector<double>& alphas);
  int64_t images() const { return images_; }

 private:
  // Writer outputs of batch i, computed under `gates` from `from_block` on (earlier ones from
  // `clean`), and the logits; `outs` is filled for every writer.
  torch::Tensor run(const torch::Tensor& gates, size_t i, int from_block,
                    const std::vector<torch::Tensor>* clean,
                    const std::vector<torch::Tensor>& ablated, std::vector<torch::Tensor>& outs);
  torch::Tensor metric_sum(const torch::Tensor& logits, size_t i) const;
  torch::Tensor mask_tensor(const EdgeMask& mask) const;

  model::ViT model_;
  std::vector<train::CalibBatch> batches_;
  Ablation ablation_;
  bool task_loss_;
  EdgeGraph graph_;
  int64_t images_ = 0;
  std::vector<torch::Tensor> clean_log_probs_;     // per batch (B, K)
  std::vector<std::vector<torch::Tensor>> clean_;  // per batch, per writer (B, N, C)
  // Per batch, per block: the clean residual stream entering it (B, N, C). clean_resid_now_
  // collects them during a run without a cache.
  std::vector<std::vector<torch::Tensor>> clean_resid_;
  std::vector<torch::Tensor> clean_resid_now_;
  // Per batch, per writer: the ablation value, broadcastable to (B, N, C) (undefined: zero).
  std::vector<std::vector<torch::Tensor>> ablated_;
};

}  // namespace vitopt::circuits
