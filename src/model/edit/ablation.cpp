// Mean ablation: measuring per-part means with one traced pass, and folding them into biases.
// A sub-block's mean output is computed from its input means through its (affine) output Linear:
// mean(W x + b) = W mean(x) + b, so no second pass is needed.
#include "model/edit/ablation.h"

#include "core/error.h"
#include "model/edit/copy.h"

namespace vitopt::edit {
namespace {

torch::Tensor index_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong));
}

torch::Tensor affine(const model::LinearImpl& lin, const torch::Tensor& x) {
  return torch::linear(x, plain_weight(lin), lin.bias);
}

// Indices in [0, n) that are not in `kept`.
std::vector<int64_t> removed(const std::vector<int>& kept, int n) {
  std::vector<bool> keep(static_cast<size_t>(n), false);
  for (int k : kept) keep.at(static_cast<size_t>(k)) = true;
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i)
    if (!keep[static_cast<size_t>(i)]) out.push_back(i);
  return out;
}

}  // namespace

AblationMeans measure_means(model::ViT& model, const std::vector<torch::Tensor>& batches) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const auto& c = model->config();
  AblationMeans m;
  m.heads.assign(c.depth, {});
  m.neurons.assign(c.depth, {});
  m.attn.assign(c.depth, {});
  m.mlp.assign(c.depth, {});
  double rows = 0;  // images * tokens
  for (const auto& x : batches) {
    model::Trace t;
    t.record_heads = true;
    t.record_mlp = true;
    model->forward(x, &t);
    rows += static_cast<double>(x.size(0)) * c.num_tokens();
    for (int b = 0; b < c.depth; ++b) {
      auto add = [](torch::Tensor& acc, const torch::Tensor& s) { acc = acc.defined() ? acc + s : s; };
      if (t.head_out[b].defined()) add(m.heads[b], t.head_out[b].sum(std::vector<int64_t>{0, 1}));
      if (t.mlp_act[b].defined()) add(m.neurons[b], t.mlp_act[b].sum(std::vector<int64_t>{0, 1}));
    }
  }
  if (rows == 0) core::throw_input("mean ablation: no images to measure the means on");
  for (int b = 0; b < c.depth; ++b) {
    auto& blk = model->block(b);
    if (m.heads[b].defined()) {
      m.heads[b] = m.heads[b] / rows;  // (H, D)
      m.attn[b] = affine(*blk.attn->proj, m.heads[b].reshape({-1}));  // (C)
    }
    if (m.neurons[b].defined()) {
      m.neurons[b] = m.neurons[b] / rows;  // (M)
      m.mlp[b] = affine(*blk.mlp->fc2, m.neurons[b]);  // (C)
    }
  }
  model->train(was_training);
  return m;
}

void set_ablation_means(model::Trace& trace, const AblationMeans& means) {
  trace.head_means = means.heads;
  trace.neuron_means = means.neurons;
  trace.attn_means = means.attn;
  trace.mlp_means = means.mlp;
}

void fold_means(model::ViT& src, model::ViT& dst, const StructurePlan& plan,
                const AblationMeans& means) {
  torch::NoGradGuard no_grad;
  const auto& c = src->config();
  if (static_cast<int>(plan.size()) != c.depth || static_cast<int>(means.heads.size()) != c.depth)
    core::throw_internal("fold_means: plan/means for {}/{} blocks, model has {}", plan.size(),
                         means.heads.size(), c.depth);
  // The residual stream's latest live writer: its bias is where a removed branch's constant goes.
  // Before any block writes, that is the embedding: pos_embed (1, N, C) broadcasts a (C) constant
  // to every token, and when it covers the patches only (no_embed_class) the prefix tokens take
  // the constant themselves.
  torch::Tensor last_bias;
  auto add_constant = [&](const torch::Tensor& v) {
    if (last_bias.defined()) {
      last_bias.add_(v);
      return;
    }
    dst->pos_embed.add_(v);
    if (c.no_embed_class)
      for (torch::Tensor* t : {&dst->cls_token, &dst->dist_token, &dst->reg_token})
        if (t->defined()) t->add_(v);
  };
  for (int b = 0; b < c.depth; ++b) {
    auto& s = src->block(b);
    auto& d = dst->block(b);
    const auto& bp = plan[b];
    if (s.attn) {
      if (d.attn) {
        const auto gone = removed(bp.heads, static_cast<int>(s.attn->heads));
        if (!gone.empty()) {
          const int D = static_cast<int>(s.attn->head_dim);
          std::vector<int> g(gone.begin(), gone.end());
          const auto cols = index_tensor(head_proj_cols(g, D));
          const auto w = plain_weight(*s.attn->proj).index_select(1, cols);  // (C, |gone|*D)
          d.attn->proj->bias.add_(w.mv(means.heads[b].index_select(0, index_tensor(gone)).reshape({-1})));
        }
        last_bias = d.attn->proj->bias;
      } else {
        add_constant(means.attn.at(b));
      }
    }
    if (s.mlp) {
      if (d.mlp) {
        const auto gone = removed(bp.neurons, static_cast<int>(s.mlp->fc1->out_features));
        if (!gone.empty()) {
          const auto idx = index_tensor(gone);
          const auto w = plain_weight(*s.mlp->fc2).index_select(1, idx);  // (C, |gone|)
          d.mlp->fc2->bias.add_(w.mv(means.neurons[b].index_select(0, idx)));
        }
        last_bias = d.mlp->fc2->bias;
      } else {
        add_constant(means.mlp.at(b));
      }
    }
  }
}

}  // namespace vitopt::edit
