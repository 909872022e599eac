#include "compress/circuits/edge_model.h"

#include <cmath>

#include "core/error.h"
#include "model/edit/copy.h"
#include "model/partial_forward.h"

namespace vitopt::circuits {
namespace {

// Gates that keep every existing edge (1) on a (R, W) table, 0 elsewhere.
torch::Tensor full_gates(const EdgeGraph& g) {
  auto t = torch::zeros(
      {static_cast<int64_t>(g.readers.size()), static_cast<int64_t>(g.writers.size())});
  for (size_t r = 0; r < g.readers.size(); ++r)
    t[static_cast<int64_t>(r)].slice(0, 0, g.readers[r].reads).fill_(1.0);
  return t;
}

}  // namespace

EdgeModel::EdgeModel(model::ViT model, std::vector<train::CalibBatch> batches, Ablation ablation,
                     bool task_loss, uint64_t seed)
    : model_(std::move(model)),
      batches_(std::move(batches)),
      ablation_(ablation),
      task_loss_(task_loss) {
  if (batches_.empty()) core::throw_input("circuits: no analysis images");
  torch::NoGradGuard no_grad;
  model_->eval();
  graph_ = edge_graph(model_->config());
  const auto W = graph_.writers.size();
  const auto gates = full_gates(graph_);
  const std::vector<torch::Tensor> none(W);  // zero ablation: exact with every edge kept
  for (size_t i = 0; i < batches_.size(); ++i) {
    clean_log_probs_.push_back(torch::log_softmax(model_->forward(batches_[i].x), 1));
    std::vector<torch::Tensor> outs;
    run(gates, i, 0, nullptr, none, outs);
    clean_.push_back(outs);
    clean_resid_.push_back(clean_resid_now_);
    images_ += batches_[i].x.size(0);
  }
  if (ablation_ == Ablation::Zero) {
    ablated_.assign(batches_.size(), none);
  } else if (ablation_ == Ablation::Mean) {
    // Over images and tokens (a constant a bias could hold); the embedding keeps one per token.
    std::vector<torch::Tensor> mean(W);
    for (const auto& outs : clean_)
      for (size_t w = 0; w < W; ++w) {
        const auto s = w == 0 ? outs[w].sum(0) : outs[w].sum(std::vector<int64_t>{0, 1});
        mean[w] = mean[w].defined() ? mean[w] + s : s;
      }
    const double tokens = static_cast<double>(model_->config().num_tokens());
    for (size_t w = 0; w < W; ++w)
      mean[w] = mean[w] / (static_cast<double>(images_) * (w == 0 ? 1.0 : tokens));
    ablated_.assign(batches_.size(), mean);
  } else {
    std::mt19937_64 rng(seed ^ 0x5eed0fab1a7e5ull);  // the same pairs as AblatedModel's
    for (size_t i = 0; i < batches_.size(); ++i) {
      auto other = batches_[i];
      other.x = other.x.index_select(0, resample_partners(other.y, rng));
      std::swap(batches_[i], other);
      std::vector<torch::Tensor> outs;
      run(gates, i, 0, nullptr, none, outs);
      std::swap(batches_[i], other);
      ablated_.push_back(outs);
    }
  }
}

torch::Tensor EdgeModel::run(const torch::Tensor& gates, size_t i, int from_block,
                             const std::vector<torch::Tensor>* clean,
                             const std::vector<torch::Tensor>& ablated,
                             std::vector<torch::Tensor>& outs) {
  const auto& c = model_->config();
  const auto W = graph_.writers.size();
  outs.assign(W, {});
  outs[0] = clean ? (*clean)[0] : model::embed_tokens(*model_, batches_[i].x);  // (B, N, C)
  // The residual stream so far (every writer and the proj biases): what a reader with every edge
  // kept takes in. Blocks before from_block are the clean model's, cached at block starts.
  const bool reuse = clean != nullptr && from_block > 0;
  auto resid = reuse ? clean_resid_[i][static_cast<size_t>(from_block)] : outs[0];
  if (clean == nullptr) clean_resid_now_.assign(1, outs[0]);
  std::vector<torch::Tensor> diffs(W);  // out - ablated, computed once per forward when needed
  auto diff = [&](size_t w) -> const torch::Tensor& {
    if (!diffs[w].defined()) diffs[w] = ablated[w].defined() ? outs[w] - ablated[w] : outs[w];
    return diffs[w];
  };
  // The stream with every edge removed: the ablated values of writers [0, reads) (a running sum,
  // extended as writers appear) plus the proj biases so far.
  torch::Tensor abl_sum = torch::zeros_like(outs[0]);
  torch::Tensor proj_bias_sum = torch::zeros({c.embed_dim});
  int abl_count = 0;
  auto ablated_sum = [&](int reads) -> const torch::Tensor& {
    for (; abl_count < reads; ++abl_count)
      if (ablated[static_cast<size_t>(abl_count)].defined())
        abl_sum = abl_sum + ablated[static_cast<size_t>(abl_count)];
    return abl_sum;
  };
  const bool grad = gates.requires_grad();
  const auto table = grad ? torch::Tensor() : gates.contiguous();
  // Inputs (count, B, N, C) of readers [r0, r0 + count), which read every writer so far. With
  // gradients: the ablated sum plus the gated differences in one product (d/d gate is one matrix
  // product per layer). Without: the residual stream minus what each removed edge carried.
  auto reader_inputs = [&](int64_t r0, int64_t count) {
    const int reads = graph_.readers[static_cast<size_t>(r0)].reads;
    if (grad) {
      std::vector<torch::Tensor> ds;
      auto base = resid;
      for (int w = 0; w < reads; ++w) {
        ds.push_back(diff(static_cast<size_t>(w)));
        base = base - ds.back();
      }
      const auto g = gates.slice(0, r0, r0 + count).slice(1, 0, reads);  // (count, reads)
      return torch::einsum("rw,wbnc->rbnc", {g, torch::stack(ds)}) + base;
    }
    const auto* t = table.data_ptr<float>();
    const auto none = ablated_sum(reads) + proj_bias_sum;
    std::vector<torch::Tensor> xs;
    for (int64_t r = r0; r < r0 + count; ++r) {
      const float* g = t + r * static_cast<int64_t>(W);
      int removed = 0;
      for (int w = 0; w < reads; ++w) removed += g[w] != 1.0f;
      // Whichever is shorter: the stream minus the removed edges' differences, or the ablated
      // sum plus the kept ones' (ACDC ends with most edges removed).
      torch::Tensor x;
      if (removed == 0) {
        x = resid;
      } else if (2 * removed <= reads) {
        x = resid.clone();
        for (int w = 0; w < reads; ++w)
          if (g[w] != 1.0f) x.sub_(diff(static_cast<size_t>(w)), 1.0f - g[w]);
      } else {
        x = none.clone();
        for (int w = 0; w < reads; ++w)
          if (g[w] != 0.0f) x.add_(diff(static_cast<size_t>(w)), g[w]);
      }
      xs.push_back(x);
    }
    return torch::stack(xs);
  };
  int64_t r = 0;
  size_t w = 1;
  for (int b = 0; b < c.depth; ++b) {
    auto& blk = model_->block(b);
    const bool cached = reuse && b < from_block;
    if (blk.attn) {
      const int64_t H = blk.attn->heads, D = blk.attn->head_dim, C = c.embed_dim;
      if (cached) {
        for (int64_t h = 0; h < H; ++h)
          outs[w + static_cast<size_t>(h)] = (*clean)[w + static_cast<size_t>(h)];
      } else {
        // Rows of the graph's readers run head-major (h * 3 + q/k/v); qkv's rows part-major.
        const auto x = blk.norm1->forward(reader_inputs(r, 3 * H));  // (3H, B, N, C)
        const auto wq = edit::plain_weight(*blk.attn->qkv)
                            .view({3, H, D, C})
                            .transpose(0, 1)
                            .reshape({3 * H, D, C});
        const auto bq =
            blk.attn->qkv->bias.view({3, H, D}).transpose(0, 1).reshape({3 * H, 1, 1, D});
        const auto p =
            (torch::einsum("rbnc,rdc->rbnd", {x, wq}) + bq).view({H, 3, x.size(1), x.size(2), D});
        const auto q = p.select(1, 0) * std::pow(static_cast<double>(D), -0.5);  // (H, B, N, D)
        const auto attn = torch::matmul(q, p.select(1, 1).transpose(-2, -1)).softmax(-1);
        const auto ctx = torch::matmul(attn, p.select(1, 2));  // (H, B, N, D)
        const auto wp = edit::plain_weight(*blk.attn->proj).view({C, H, D}).permute({1, 0, 2});
        const auto o = torch::einsum("hbnd,hcd->hbnc", {ctx, wp});  // (H, B, N, C)
        for (int64_t h = 0; h < H; ++h) outs[w + static_cast<size_t>(h)] = o[h];
        resid = resid + o.sum(0) + blk.attn->proj->bias;
      }
      proj_bias_sum = proj_bias_sum + blk.attn->proj->bias;
      r += 3 * H;
      w += static_cast<size_t>(H);
    }
    if (blk.mlp) {
      if (cached) {
        outs[w] = (*clean)[w];
      } else {
        outs[w] = blk.mlp->forward(blk.norm2->forward(reader_inputs(r, 1)[0]));
        resid = resid + outs[w];
      }
      r += 1;
      w += 1;
    }
    if (clean == nullptr) clean_resid_now_.push_back(resid);
  }
  return model::logits_from_block(*model_, reader_inputs(r, 1)[0], c.depth);
}

torch::Tensor EdgeModel::metric_sum(const torch::Tensor& logits, size_t i) const {
  return circuit_metric_sum(logits, clean_log_probs_[i], batches_[i].y, task_loss_);
}

torch::Tensor EdgeModel::mask_tensor(const EdgeMask& mask) const {
  std::vector<float> v;
  for (const auto& row : mask) v.insert(v.end(), row.begin(), row.end());
  return torch::tensor(v).view({static_cast<int64_t>(mask.size()), -1});
}

torch::Tensor EdgeModel::logits(const torch::Tensor& gates, size_t i, int from_block) {
  std::vector<torch::Tensor> outs;
  return run(gates, i, from_block, &clean_[i], ablated_[i], outs);
}

double EdgeModel::metric(const EdgeMask& mask, int from_block) {
  torch::NoGradGuard no_grad;
  const auto gates = mask_tensor(mask);
  double sum = 0;
  for (size_t i = 0; i < batches_.size(); ++i)
    sum += metric_sum(logits(gates, i, from_block), i).item<double>();
  return sum / static_cast<double>(images_);
}

std::vector<double> EdgeModel::attribute(const std::vector<double>& alphas) {
  FrozenWeights frozen(model_);
  const auto full = full_gates(graph_);
  auto acc = torch::zeros_like(full);
  for (double alpha : alphas)
    for (size_t i = 0; i < batches_.size(); ++i) {
      auto gates = (full * alpha).requires_grad_(true);
      std::vector<torch::Tensor> outs;
      metric_sum(run(gates, i, 0, nullptr, ablated_[i], outs), i).backward();
      acc += gates.grad() * full;
    }
  acc = acc * (-1.0 / (static_cast<double>(images_) * static_cast<double>(alphas.size())));
  acc = acc.to(torch::kDouble).contiguous();
  return std::vector<double>(acc.data_ptr<double>(), acc.data_ptr<double>() + acc.numel());
}

}  // namespace vitopt::circuits
