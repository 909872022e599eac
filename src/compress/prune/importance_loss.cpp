// Measured-loss importance: the calibration loss with the group removed (gate 0) minus the
// unpruned loss. Exact rather than estimated, one forward per group, rerunning only from the
// group's block on (block inputs are cached per batch). Groups only.
#include <fmt/format.h>

#include "compress/prune/importance.h"
#include "core/progress.h"
#include "model/partial_forward.h"

namespace vitopt::prune {
namespace {

namespace F = torch::nn::functional;

double ce_sum(const torch::Tensor& logits, const torch::Tensor& y) {
  return F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kSum))
      .item<double>();
}

// Measured: loss with the group's gate at 0 minus the unpruned loss, on the calibration set.
GroupScores loss_scores(model::ViT& model, ScoreKinds kinds, const std::vector<CalibBatch>& calib,
                        bool quiet) {
  torch::NoGradGuard no_grad;
  const auto& c = model->config();
  const auto n = static_cast<double>(calibration_count(calib));
  // Inputs of every block per batch, so a group of block b only reruns blocks b..depth-1.
  std::vector<std::vector<torch::Tensor>> hidden;
  double base = 0;
  for (const auto& batch : calib) {
    model::Trace t;
    t.record_hidden = true;
    base += ce_sum(model->forward(batch.x, &t), batch.y);
    hidden.push_back(t.hidden);
  }
  base /= n;
  auto removed_loss = [&](int b, model::Trace& t) {
    double sum = 0;
    for (size_t i = 0; i < calib.size(); ++i)
      sum += ce_sum(model::logits_from_block(*model, hidden[i][b], b, &t), calib[i].y);
    return sum / n - base;
  };
  int64_t total = 0;
  for (int b = 0; b < c.depth; ++b) {
    if (!c.blocks[b].skip_attn) total += (kinds.heads ? c.block_heads(b) : 0) + kinds.subblocks;
    if (!c.blocks[b].skip_mlp) total += (kinds.neurons ? c.block_mlp(b) : 0) + kinds.subblocks;
  }
  core::ProgressOptions popts;
  popts.quiet = quiet;
  popts.unit = "group";
  core::Progress progress("  loss importance", total, popts);
  int64_t done = 0;
  auto s = GroupScores::empty(c.depth);
  for (int b = 0; b < c.depth; ++b) {
    model::Trace t;
    t.head_gates.assign(c.depth, {});
    t.neuron_gates.assign(c.depth, {});
    t.attn_gates.assign(c.depth, {});
    t.mlp_gates.assign(c.depth, {});
    if (!c.blocks[b].skip_attn) {
      if (kinds.heads) {
        const int H = c.block_heads(b);
        s.heads[b] = torch::zeros({H});
        for (int h = 0; h < H; ++h) {
          t.head_gates[b] = torch::ones({H});
          t.head_gates[b][h] = 0.0;
          s.heads[b][h] = removed_loss(b, t);
          ++done;
          progress.update(done, done);
        }
        t.head_gates[b] = torch::Tensor();
      }
      if (kinds.subblocks) {
        t.attn_gates[b] = torch::zeros({});
        s.attn[b] = removed_loss(b, t);
        t.attn_gates[b] = torch::Tensor();
        ++done;
        progress.update(done, done);
      }
    }
    if (!c.blocks[b].skip_mlp) {
      if (kinds.neurons) {
        const int M = c.block_mlp(b);
        s.neurons[b] = torch::zeros({M});
        auto acc = s.neurons[b].accessor<float, 1>();
        for (int j = 0; j < M; ++j) {
          t.neuron_gates[b] = torch::ones({M});
          t.neuron_gates[b][j] = 0.0;
          acc[j] = static_cast<float>(removed_loss(b, t));
          ++done;
          progress.update(done, done);
        }
        t.neuron_gates[b] = torch::Tensor();
      }
      if (kinds.subblocks) {
        t.mlp_gates[b] = torch::zeros({});
        s.mlp[b] = removed_loss(b, t);
        ++done;
        progress.update(done, done);
      }
    }
  }
  progress.finish(fmt::format("{} groups scored, base loss {:.4f}", total, base));
  return s;
}

class LossImportance : public Importance {
 public:
  std::string name() const override { return "loss"; }
  bool needs_data() const override { return true; }
  bool scores_groups() const override { return true; }
  GroupScores group_scores(model::ViT& model, ScoreKinds kinds,
                           const std::vector<CalibBatch>& calib, bool quiet) override {
    return loss_scores(model, kinds, calib, quiet);
  }
};

}  // namespace

std::unique_ptr<Importance> make_loss_importance() { return std::make_unique<LossImportance>(); }

}  // namespace vitopt::prune
