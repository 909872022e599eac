#include "compress/circuits/ablated_model.h"

#include "core/error.h"
#include "model/edit/copy.h"
#include "model/partial_forward.h"

namespace vitopt::circuits {
namespace {

namespace F = torch::nn::functional;

torch::Tensor affine(const model::LinearImpl& lin, const torch::Tensor& x) {
  return torch::linear(x, edit::plain_weight(lin), lin.bias);
}

torch::Tensor flags_tensor(const std::vector<char>& flags) {
  std::vector<float> v(flags.begin(), flags.end());
  return torch::tensor(v);
}

}  // namespace

torch::Tensor resample_partners(const torch::Tensor& labels, std::mt19937_64& rng) {
  const int64_t B = labels.size(0);
  auto y = labels.to(torch::kLong).contiguous();
  const auto* yp = y.data_ptr<int64_t>();
  std::vector<int64_t> partner(static_cast<size_t>(B));
  const int64_t offset = B > 1 ? 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(B - 1)) : 0;
  for (int64_t i = 0; i < B; ++i) {
    int64_t found = -1;
    for (int64_t t = 0; t < B && found < 0; ++t) {
      const int64_t j = (i + offset + t) % B;
      if (yp[j] != yp[i]) found = j;
    }
    if (found < 0)
      core::throw_input(
          "--ablation resample: an analysis batch has images of one class only; resampling "
          "needs another class to take activations from (use more or larger batches)");
    partner[static_cast<size_t>(i)] = found;
  }
  return torch::tensor(partner, torch::kLong);
}

Ablation parse_ablation(const std::string& text) {
  if (text == "mean") return Ablation::Mean;
  if (text == "zero") return Ablation::Zero;
  if (text == "resample") return Ablation::Resample;
  core::throw_input("--ablation: expected mean, zero or resample, got '{}'", text);
}

const char* ablation_name(Ablation a) {
  return a == Ablation::Mean ? "mean" : a == Ablation::Zero ? "zero" : "resample";
}

AblatedModel::AblatedModel(model::ViT model, std::vector<train::CalibBatch> batches,
                           Ablation ablation, bool task_loss, uint64_t seed)
    : model_(std::move(model)),
      batches_(std::move(batches)),
      ablation_(ablation),
      task_loss_(task_loss) {
  if (batches_.empty()) core::throw_input("circuits: no analysis images");
  torch::NoGradGuard no_grad;
  model_->eval();
  const auto& c = model_->config();
  for (const auto& b : batches_) {
    model::Trace t;
    t.record_hidden = true;
    clean_log_probs_.push_back(torch::log_softmax(model_->forward(b.x, &t), 1));
    t.hidden.pop_back();  // the last block's output is no block's input
    block_input_.push_back(t.hidden);
    images_ += b.x.size(0);
  }
  means_ = edit::measure_means(model_, train::batch_inputs(batches_));
  torch::Tensor sum;
  for (const auto& in : block_input_) sum = sum.defined() ? sum + in[0].sum(0) : in[0].sum(0);
  embed_mean_ = sum / static_cast<double>(images_);  // (N, C)
  if (ablation_ == Ablation::Mean)
    shared_ = {embed_mean_, means_.heads, means_.neurons, means_.attn, means_.mlp};
  if (ablation_ != Ablation::Resample) return;
  std::mt19937_64 rng(seed ^ 0x5eed0fab1a7e5ull);
  for (const auto& b : batches_) {
    const auto other = b.x.index_select(0, resample_partners(b.y, rng));
    model::Trace t;
    t.record_hidden = t.record_heads = t.record_mlp = true;
    model_->forward(other, &t);
    Values v;
    v.embed = t.hidden[0];  // (B, N, C)
    v.heads = t.head_out;   // (B, N, H, D)
    v.neurons = t.mlp_act;  // (B, N, M)
    v.attn.assign(c.depth, {});
    v.mlp.assign(c.depth, {});
    for (int i = 0; i < c.depth; ++i) {
      auto& blk = model_->block(i);
      if (v.heads[i].defined())
        v.attn[i] = affine(*blk.attn->proj, v.heads[i].flatten(2));  // (B, N, C)
      if (v.neurons[i].defined()) v.mlp[i] = affine(*blk.mlp->fc2, v.neurons[i]);
    }
    resampled_.push_back(std::move(v));
  }
}

void AblatedModel::fill_trace(model::Trace& t, const Circuit& k, size_t i) const {
  const auto& v = values(i);
  const int depth = model_->config().depth;
  for (auto* g : {&t.head_gates, &t.neuron_gates, &t.attn_gates, &t.mlp_gates, &t.head_means,
                  &t.neuron_means, &t.attn_means, &t.mlp_means})
    g->assign(static_cast<size_t>(depth), {});
  auto value = [](const std::vector<torch::Tensor>& vs, int b) {
    return vs.empty() ? torch::Tensor() : vs[static_cast<size_t>(b)];
  };
  for (int b = 0; b < depth; ++b) {
    const auto& heads = k.heads[b];
    if (!heads.empty()) {
      if (!k.attn_live(b)) {
        t.attn_gates[b] = torch::zeros({});
        t.attn_means[b] = value(v.attn, b);
      } else if (std::count(heads.begin(), heads.end(), 1) < static_cast<long>(heads.size())) {
        t.head_gates[b] = flags_tensor(heads);
        t.head_means[b] = value(v.heads, b);
      }
    }
    const auto& neurons = k.neurons[b];
    if (!neurons.empty()) {
      if (!k.mlp_live(b)) {
        t.mlp_gates[b] = torch::zeros({});
        t.mlp_means[b] = value(v.mlp, b);
      } else if (std::count(neurons.begin(), neurons.end(), 1) <
                 static_cast<long>(neurons.size())) {
        t.neuron_gates[b] = flags_tensor(neurons);
        t.neuron_means[b] = value(v.neurons, b);
      }
    }
  }
}

torch::Tensor AblatedModel::logits(const Circuit& k, size_t i, int from_block) {
  torch::Tensor h = block_input_[i][static_cast<size_t>(from_block)];
  if (from_block == 0 && !k.embed) {
    const auto& e = values(i).embed;
    h = e.defined() ? e.expand_as(h) : torch::zeros_like(h);
  }
  model::Trace t;
  fill_trace(t, k, i);
  return model::logits_from_block(*model_, h, from_block, &t);
}

torch::Tensor circuit_metric_sum(const torch::Tensor& logits, const torch::Tensor& lp,
                                 const torch::Tensor& labels, bool task_loss) {
  if (task_loss)
    return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  return (lp.exp() * (lp - torch::log_softmax(logits, 1))).sum();
}

FrozenWeights::FrozenWeights(model::ViT& model) {
  for (auto& p : model->parameters()) {
    saved_.emplace_back(p, p.requires_grad());
    p.set_requires_grad(false);
  }
}

FrozenWeights::~FrozenWeights() {
  for (auto& [p, req] : saved_) p.set_requires_grad(req);
}

torch::Tensor AblatedModel::metric_sum(const torch::Tensor& logits, size_t i) const {
  return circuit_metric_sum(logits, clean_log_probs_[i], batches_[i].y, task_loss_);
}

double AblatedModel::metric(const Circuit& k, int from_block) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (size_t i = 0; i < batches_.size(); ++i)
    sum += metric_sum(logits(k, i, from_block), i).item<double>();
  return sum / static_cast<double>(images_);
}

LeafScores AblatedModel::attribute(const std::vector<double>& alphas, const Circuit* path) {
  const auto& c = model_->config();
  const auto all = Circuit::full(c);
  FrozenWeights frozen(model_);
  LeafScores s;
  s.heads.assign(c.depth, {});
  s.neurons.assign(c.depth, {});
  double embed = 0;
  for (double alpha : alphas) {
    for (size_t i = 0; i < batches_.size(); ++i) {
      const auto& v = values(i);
      // A gate is alpha where the path removes the leaf (everywhere without a path), else 1.
      auto gate = [&](const std::vector<char>& kept, bool live) {
        std::vector<float> g(kept.size(), 1.0f);
        for (size_t j = 0; j < kept.size(); ++j)
          if (path == nullptr || !live || !kept[j]) g[j] = static_cast<float>(alpha);
        return torch::tensor(g).requires_grad_(true);
      };
      model::Trace t;
      fill_trace(t, all, i);
      std::vector<torch::Tensor> hg(c.depth), ng(c.depth);
      for (int b = 0; b < c.depth; ++b) {
        if (!all.heads[b].empty()) {
          hg[b] = gate(path ? path->heads[b] : all.heads[b], path ? path->attn_live(b) : true);
          t.head_gates[b] = hg[b];
          if (!v.heads.empty()) t.head_means[b] = v.heads[b];
        }
        if (!all.neurons[b].empty()) {
          ng[b] = gate(path ? path->neurons[b] : all.neurons[b], path ? path->mlp_live(b) : true);
          t.neuron_gates[b] = ng[b];
          if (!v.neurons.empty()) t.neuron_means[b] = v.neurons[b];
        }
      }
      const double ge0 = path == nullptr || !path->embed ? alpha : 1.0;
      auto ge = torch::full({}, ge0).requires_grad_(true);
      const auto& clean = block_input_[i][0];
      auto h = ge * clean;
      if (v.embed.defined()) h = h + (1 - ge) * v.embed.expand_as(clean);
      metric_sum(model::logits_from_block(*model_, h, 0, &t), i).backward();
      embed += ge.grad().item<double>();
      for (int b = 0; b < c.depth; ++b) {
        auto add = [](torch::Tensor& acc, const torch::Tensor& g) {
          acc = acc.defined() ? acc + g.grad() : g.grad().clone();
        };
        if (hg[b].defined()) add(s.heads[b], hg[b]);
        if (ng[b].defined()) add(s.neurons[b], ng[b]);
      }
    }
  }
  // Removing a leaf moves its gate from 1 to 0: the metric changes by about -d metric / d gate.
  const double scale = -1.0 / (static_cast<double>(images_) * static_cast<double>(alphas.size()));
  s.embed = embed * scale;
  for (auto& x : s.heads)
    if (x.defined()) x = x * scale;
  for (auto& x : s.neurons)
    if (x.defined()) x = x * scale;
  return s;
}

}  // namespace vitopt::circuits
