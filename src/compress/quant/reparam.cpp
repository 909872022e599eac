// LayerNorm scale folding (see reparam.h). Arithmetic in float64, stored back as float32: the fp32
// model's logits change only by rounding (checked in tests).
#include "compress/quant/reparam.h"

#include <fmt/format.h>

namespace vitopt::quant {
namespace {

// Folds one LayerNorm into the Linears reading it, given the channel ranges lo, hi (K).
nlohmann::json fold_one(torch::nn::LayerNormImpl& norm,
                        const std::vector<model::LinearImpl*>& readers, const torch::Tensor& lo_in,
                        const torch::Tensor& hi_in, const ReparamOptions& o) {
  torch::NoGradGuard no_grad;
  const auto lo = lo_in.to(torch::kDouble), hi = hi_in.to(torch::kDouble);  // (K)
  const auto half = ((hi - lo) / 2).clamp_min(1e-6 * (hi - lo).max().item<double>() + 1e-12);
  const auto centre = (hi + lo) / 2;
  const auto r = (half / half.mean()).pow(o.alpha);  // (K) > 0
  bool all_bias = true;
  for (auto* lin : readers) all_bias = all_bias && lin->bias.defined();
  const auto off = (o.center && all_bias) ? centre : torch::zeros_like(centre);  // (K)
  auto gamma = norm.weight.to(torch::kDouble), beta = norm.bias.to(torch::kDouble);
  norm.weight.copy_(gamma / r);
  norm.bias.copy_((beta - off) / r);
  for (auto* lin : readers) {
    const auto w = lin->weight.to(torch::kDouble);  // (out, K)
    if (lin->bias.defined()) lin->bias.copy_(lin->bias.to(torch::kDouble) + w.matmul(off));
    lin->weight.copy_(w * r.view({1, -1}));
  }
  const auto new_lo = (lo - off) / r, new_hi = (hi - off) / r;
  return {
      {"max_abs_before", torch::maximum(lo.abs(), hi.abs()).max().item<double>()},
      {"max_abs_after", torch::maximum(new_lo.abs(), new_hi.abs()).max().item<double>()},
      {"range_spread_before", (half.max() / half.min()).item<double>()},
      {"range_spread_after", ((new_hi - new_lo).max() / (new_hi - new_lo).min()).item<double>()},
      {"centred", o.center && all_bias}};
}

}  // namespace

nlohmann::json fold_layernorm_scales(model::ViT& model,
                                     const std::map<std::string, ActivationObserver>& observers,
                                     const ReparamOptions& options) {
  nlohmann::json summary = nlohmann::json::object();
  auto find = [&](const std::string& name) -> const ActivationObserver* {
    auto it = observers.find(name);
    return it == observers.end() || it->second.empty() ? nullptr : &it->second;
  };
  const auto& c = model->config();
  // A weight shared between blocks follows several LayerNorms: folding one norm's scales into it
  // would change the others' blocks, so shared branches (owners included) are left alone.
  std::vector<bool> attn_shared(static_cast<size_t>(c.depth)),
      mlp_shared(static_cast<size_t>(c.depth));
  for (int i = 0; i < c.depth; ++i) {
    const auto& bc = c.blocks[static_cast<size_t>(i)];
    if (bc.attn_shared_with >= 0)
      attn_shared[static_cast<size_t>(i)] = attn_shared[static_cast<size_t>(bc.attn_shared_with)] =
          true;
    if (bc.mlp_shared_with >= 0)
      mlp_shared[static_cast<size_t>(i)] = mlp_shared[static_cast<size_t>(bc.mlp_shared_with)] =
          true;
  }
  for (int i = 0; i < c.depth; ++i) {
    auto& block = model->block(i);
    if (block.attn && block.attn->qkv->rank == 0 && !attn_shared[static_cast<size_t>(i)]) {
      if (const auto* ob = find(fmt::format("blocks.{}.attn.qkv", i))) {
        summary[fmt::format("blocks.{}.norm1", i)] = fold_one(
            *block.norm1, {block.attn->qkv.get()}, ob->channel_min(), ob->channel_max(), options);
      }
    }
    if (block.mlp && block.mlp->fc1->rank == 0 && !mlp_shared[static_cast<size_t>(i)]) {
      if (const auto* ob = find(fmt::format("blocks.{}.mlp.fc1", i))) {
        summary[fmt::format("blocks.{}.norm2", i)] = fold_one(
            *block.norm2, {block.mlp->fc1.get()}, ob->channel_min(), ob->channel_max(), options);
      }
    }
  }
  // Final norm -> head (and head_dist): the union of what the heads read.
  // Every reader must take the compensation, else the norm is left alone.
  std::vector<model::LinearImpl*> readers;
  torch::Tensor lo, hi;
  bool foldable = true;
  std::vector<std::pair<std::string, model::Linear>> heads{{"head", model->head},
                                                           {"head_dist", model->head_dist}};
  for (auto& [name, lin] : heads) {
    if (!lin) continue;
    const auto* ob = find(name);
    if (lin->rank > 0 || ob == nullptr) {
      foldable = false;
      continue;
    }
    readers.push_back(lin.get());
    lo = lo.defined() ? torch::minimum(lo, ob->channel_min()) : ob->channel_min();
    hi = hi.defined() ? torch::maximum(hi, ob->channel_max()) : ob->channel_max();
  }
  if (foldable && !readers.empty())
    summary["norm"] = fold_one(*model->norm, readers, lo, hi, options);
  return summary;
}

}  // namespace vitopt::quant
