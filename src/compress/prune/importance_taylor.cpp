// First-order Taylor importance: the loss change from removing a part, estimated by the gradient.
// Groups: |dL/dgate| at gate = 1 through the trace gates (one backward per batch scores every
// head, neuron and sub-block); single weights: |w * dL/dw| (removing w changes L by ~ -w dL/dw).
// Scores are summed over the calibration batches.
#include "compress/prune/importance.h"
#include "model/edit/plan.h"

namespace vitopt::prune {
namespace {

namespace F = torch::nn::functional;

class TaylorImportance : public Importance {
 public:
  std::string name() const override { return "taylor"; }
  bool needs_data() const override { return true; }
  bool scores_weights() const override { return true; }
  bool scores_groups() const override { return true; }

  TensorMap weight_scores(model::ViT& model, const std::vector<CalibBatch>& calib) override {
    calibration_count(calib);
    auto linears = edit::prunable_linears(model);
    TensorMap acc;
    for (auto& [name, lin] : linears) acc[name] = torch::zeros_like(lin->weight);
    for (const auto& batch : calib) {
      model->zero_grad();
      F::cross_entropy(model->forward(batch.x), batch.y).backward();
      torch::NoGradGuard no_grad;
      for (auto& [name, lin] : linears)
        if (lin->weight.grad().defined())
          acc[name] += (lin->effective_weight() * lin->weight.grad()).abs();
    }
    model->zero_grad();
    return acc;
  }

  GroupScores group_scores(model::ViT& model, ScoreKinds kinds,
                           const std::vector<CalibBatch>& calib, bool) override {
    calibration_count(calib);
    const auto& c = model->config();
    model::Trace trace;
    trace.head_gates.assign(c.depth, {});
    trace.neuron_gates.assign(c.depth, {});
    trace.attn_gates.assign(c.depth, {});
    trace.mlp_gates.assign(c.depth, {});
    std::vector<torch::Tensor*> gates;
    auto ones = [](std::vector<int64_t> shape) { return torch::ones(shape).requires_grad_(true); };
    for (int b = 0; b < c.depth; ++b) {
      const auto& bc = c.blocks[b];
      if (!bc.skip_attn) {
        if (kinds.heads) gates.push_back(&(trace.head_gates[b] = ones({c.block_heads(b)})));
        if (kinds.subblocks) gates.push_back(&(trace.attn_gates[b] = ones({})));
      }
      if (!bc.skip_mlp) {
        if (kinds.neurons) gates.push_back(&(trace.neuron_gates[b] = ones({c.block_mlp(b)})));
        if (kinds.subblocks) gates.push_back(&(trace.mlp_gates[b] = ones({})));
      }
    }
    std::vector<torch::Tensor> inputs, acc;
    for (auto* g : gates) {
      inputs.push_back(*g);
      acc.push_back(torch::zeros_like(*g));
    }
    for (const auto& batch : calib) {
      auto loss = F::cross_entropy(model->forward(batch.x, &trace), batch.y);
      auto grads = torch::autograd::grad({loss}, inputs);
      for (size_t i = 0; i < grads.size(); ++i) acc[i] += grads[i].abs();
    }
    auto s = GroupScores::empty(c.depth);
    size_t i = 0;
    for (int b = 0; b < c.depth; ++b) {  // same order as `gates` above
      const auto& bc = c.blocks[b];
      if (!bc.skip_attn) {
        if (kinds.heads) s.heads[b] = acc[i++];
        if (kinds.subblocks) s.attn[b] = acc[i++].item<double>();
      }
      if (!bc.skip_mlp) {
        if (kinds.neurons) s.neurons[b] = acc[i++];
        if (kinds.subblocks) s.mlp[b] = acc[i++].item<double>();
      }
    }
    return s;
  }
};

}  // namespace

std::unique_ptr<Importance> make_taylor_importance() {
  return std::make_unique<TaylorImportance>();
}

}  // namespace vitopt::prune
