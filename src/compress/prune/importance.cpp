// Importance scores: calibration data, |w * grad| sensitivity, and head / neuron / sub-block
// scores by L2, Taylor (gate gradients from one backward per batch) or measured loss (one
// forward from the block's cached input per removed group).
#include "compress/prune/importance.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "compress/prune/groups.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/loader.h"
#include "train/data_bridge.h"

namespace vitopt::prune {
namespace {

namespace F = torch::nn::functional;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Logits from the input of block `first` (B, N, C) onward: remaining blocks, norm, pool, head(s).
torch::Tensor logits_from_block(model::ViT& model, torch::Tensor h, int first,
                                model::Trace* trace) {
  const auto& c = model->config();
  for (int i = first; i < c.depth; ++i) h = model->block(i).forward(h, trace);
  auto feats = model->norm->forward(h);  // (B, N, C)
  auto pooled = c.pool == "avg" ? feats.slice(1, c.num_prefix_tokens()).mean(1) : feats.select(1, 0);
  auto logits = model->head->forward(pooled);  // (B, K)
  if (c.distill_token) logits = (logits + model->head_dist->forward(feats.select(1, 1))) / 2;
  return logits;
}

double ce_sum(const torch::Tensor& logits, const torch::Tensor& y) {
  return F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kSum))
      .item<double>();
}

int64_t calib_count(const std::vector<CalibBatch>& calib) {
  int64_t n = 0;
  for (const auto& b : calib) n += b.x.size(0);
  if (n == 0) core::throw_input("--calib-images: the calibration set is empty");
  return n;
}

// Taylor: |dL/dg| at g = 1 summed over batches (first-order estimate of the loss change).
GroupScores taylor_scores(model::ViT& model, ScoreKinds kinds, const std::vector<CalibBatch>& calib) {
  const auto& c = model->config();
  model::Trace trace;
  trace.head_gates.assign(c.depth, {});
  trace.neuron_gates.assign(c.depth, {});
  trace.attn_gates.assign(c.depth, {});
  trace.mlp_gates.assign(c.depth, {});
  std::vector<torch::Tensor*> gates;
  for (int b = 0; b < c.depth; ++b) {
    const auto& bc = c.blocks[b];
    auto ones = [](std::vector<int64_t> shape) { return torch::ones(shape).requires_grad_(true); };
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
  GroupScores s;
  s.heads.assign(c.depth, {});
  s.neurons.assign(c.depth, {});
  s.attn.assign(c.depth, kNaN);
  s.mlp.assign(c.depth, kNaN);
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

// Measured: loss with the group's gate at 0 minus the unpruned loss, on the calibration set.
GroupScores loss_scores(model::ViT& model, ScoreKinds kinds, const std::vector<CalibBatch>& calib,
                        bool quiet) {
  torch::NoGradGuard no_grad;
  const auto& c = model->config();
  const auto n = static_cast<double>(calib_count(calib));
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
      sum += ce_sum(logits_from_block(model, hidden[i][b], b, &t), calib[i].y);
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
  GroupScores s;
  s.heads.assign(c.depth, {});
  s.neurons.assign(c.depth, {});
  s.attn.assign(c.depth, kNaN);
  s.mlp.assign(c.depth, kNaN);
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

GroupScores l2_scores(model::ViT& model, ScoreKinds kinds) {
  const auto& c = model->config();
  GroupScores s;
  s.heads.assign(c.depth, {});
  s.neurons.assign(c.depth, {});
  s.attn.assign(c.depth, kNaN);
  s.mlp.assign(c.depth, kNaN);
  for (int b = 0; b < c.depth; ++b) {
    if (kinds.heads) s.heads[b] = head_l2(model, b);
    if (kinds.neurons) s.neurons[b] = neuron_l2(model, b);
    if (kinds.subblocks) {
      auto [a, m] = subblock_l2(model, b);
      if (a >= 0) s.attn[b] = a;
      if (m >= 0) s.mlp[b] = m;
    }
  }
  return s;
}

}  // namespace

std::vector<CalibBatch> load_calibration(const std::string& data, const io::ViTConfig& config,
                                         size_t images, int64_t batch, uint64_t seed) {
  auto ds = train::open_dataset_for(data, config, data::Split::Train, images, seed);
  train::check_dataset_fits(*ds, config);
  data::LoaderOptions lopts;
  lopts.batch_size = batch;
  lopts.workers = 1;
  lopts.transform = train::eval_transform(config);
  data::DataLoader loader(ds, lopts);
  std::vector<CalibBatch> out;
  data::Batch b;
  loader.start_epoch(0);
  while (loader.next(b)) {
    // clone(): the batch's buffers are reused by the next call.
    out.push_back({train::batch_images(b, torch::kCPU).clone(),
                   train::batch_labels(b, torch::kCPU).clone()});
  }
  return out;
}

double calibration_loss(model::ViT& model, const std::vector<CalibBatch>& calib,
                        model::Trace* trace) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (const auto& b : calib) sum += ce_sum(model->forward(b.x, trace), b.y);
  return sum / static_cast<double>(calib_count(calib));
}

TensorMap sensitivity_scores(model::ViT& model, const std::vector<CalibBatch>& calib) {
  calib_count(calib);
  const bool was_training = model->is_training();
  model->eval();
  auto linears = prunable_linears(model);
  TensorMap acc;
  for (auto& [name, lin] : linears) acc[name] = torch::zeros_like(lin->weight);
  for (const auto& batch : calib) {
    model->zero_grad();
    F::cross_entropy(model->forward(batch.x), batch.y).backward();
    torch::NoGradGuard no_grad;
    for (auto& [name, lin] : linears) {
      if (lin->weight.grad().defined()) acc[name] += (lin->effective_weight() * lin->weight.grad()).abs();
    }
  }
  model->zero_grad();
  model->train(was_training);
  return acc;
}

Criterion parse_criterion(const std::string& name) {
  if (name == "l2") return Criterion::L2;
  if (name == "taylor") return Criterion::Taylor;
  if (name == "loss") return Criterion::Loss;
  core::throw_input("--criterion: expected one of [l2, taylor, loss], got '{}'", name);
}

std::string criterion_name(Criterion c) {
  switch (c) {
    case Criterion::L2: return "l2";
    case Criterion::Taylor: return "taylor";
    case Criterion::Loss: return "loss";
  }
  return "?";
}

GroupScores group_scores(model::ViT& model, Criterion criterion, ScoreKinds kinds,
                         const std::vector<CalibBatch>& calib, bool quiet) {
  const bool was_training = model->is_training();
  model->eval();
  GroupScores s;
  switch (criterion) {
    case Criterion::L2: s = l2_scores(model, kinds); break;
    case Criterion::Taylor: s = taylor_scores(model, kinds, calib); break;
    case Criterion::Loss: s = loss_scores(model, kinds, calib, quiet); break;
  }
  model->train(was_training);
  return s;
}

}  // namespace vitopt::prune
