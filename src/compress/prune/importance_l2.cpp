// L2 importance (data-free): |w| for single weights (magnitude pruning), and the L2 norm of a
// group's coupled weights: a head's q/k/v rows (weights and biases) and proj columns, a neuron's
// fc1 row + bias and fc2 column, a sub-block's whole set.
#include <cmath>

#include "compress/prune/importance.h"
#include "model/edit/plan.h"

namespace vitopt::prune {
namespace {

// (H): L2 of every head's coupled weights in block b; undefined without attention.
torch::Tensor head_l2(model::ViT& model, int block) {
  auto& blk = model->block(block);
  if (!blk.attn) return {};
  const int64_t H = blk.attn->heads, D = blk.attn->head_dim;
  // qkv weight (3*H*D, C) -> (3, H, D, C): squared sums per head over parts, rows and inputs.
  auto sq = blk.attn->qkv->effective_weight()
                .reshape({3, H, D, -1})
                .pow(2)
                .sum(std::vector<int64_t>{0, 2, 3});  // (H)
  if (blk.attn->qkv->bias.defined())
    sq += blk.attn->qkv->bias.reshape({3, H, D}).pow(2).sum(std::vector<int64_t>{0, 2});
  // proj weight (C, H*D) -> (C, H, D): columns of head h.
  sq +=
      blk.attn->proj->effective_weight().reshape({-1, H, D}).pow(2).sum(std::vector<int64_t>{0, 2});
  return sq.sqrt();
}

// (M): L2 of every neuron's fc1 row + bias and fc2 column; undefined without MLP.
torch::Tensor neuron_l2(model::ViT& model, int block) {
  auto& blk = model->block(block);
  if (!blk.mlp) return {};
  auto sq = blk.mlp->fc1->effective_weight().pow(2).sum(1);  // (M): fc1 rows
  if (blk.mlp->fc1->bias.defined()) sq += blk.mlp->fc1->bias.pow(2);
  sq += blk.mlp->fc2->effective_weight().pow(2).sum(0);  // (M): fc2 columns
  return sq.sqrt();
}

class L2Importance : public Importance {
 public:
  std::string name() const override { return "l2"; }
  bool needs_data() const override { return false; }
  bool scores_weights() const override { return true; }
  bool scores_groups() const override { return true; }

  TensorMap weight_scores(model::ViT& model, const std::vector<CalibBatch>&) override {
    torch::NoGradGuard no_grad;
    TensorMap out;  // masked weights are 0, the lowest possible score
    for (auto& [name, lin] : edit::prunable_linears(model))
      out[name] = lin->effective_weight().abs();
    return out;
  }

  GroupScores group_scores(model::ViT& model, ScoreKinds kinds, const std::vector<CalibBatch>&,
                           bool) override {
    torch::NoGradGuard no_grad;
    const int depth = model->config().depth;
    auto s = GroupScores::empty(depth);
    for (int b = 0; b < depth; ++b) {
      const auto h = head_l2(model, b), n = neuron_l2(model, b);
      if (kinds.heads) s.heads[b] = h;
      if (kinds.neurons) s.neurons[b] = n;
      if (kinds.subblocks) {
        if (h.defined()) s.attn[b] = h.pow(2).sum().sqrt().item<double>();
        if (n.defined()) s.mlp[b] = n.pow(2).sum().sqrt().item<double>();
      }
    }
    return s;
  }
};

}  // namespace

std::unique_ptr<Importance> make_l2_importance() { return std::make_unique<L2Importance>(); }

}  // namespace vitopt::prune
