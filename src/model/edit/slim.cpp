// Slimming: copies the kept heads' q/k/v rows and proj columns, the kept neurons' fc1 rows and
// fc2 columns, and everything else as is, into a model built from the edited config.
#include "model/edit/slim.h"

#include <fmt/format.h>

#include <numeric>

#include "core/error.h"

namespace vitopt::edit {
namespace {

torch::Tensor index_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong));
}

// Copies `src` into `dst` (same shape), detached.
void copy_into(torch::Tensor& dst, const torch::Tensor& src) {
  if (!dst.defined() && !src.defined()) return;
  if (dst.sizes() != src.sizes())
    core::throw_internal("slim: shape mismatch [{}] vs [{}]", fmt::join(dst.sizes(), ", "),
                         fmt::join(src.sizes(), ", "));
  dst.copy_(src);
}

void copy_layer_norm(torch::nn::LayerNorm& dst, const torch::nn::LayerNorm& src) {
  copy_into(dst->weight, src->weight);
  copy_into(dst->bias, src->bias);
}

}  // namespace

io::ViTConfig slim_config(const io::ViTConfig& config, const StructurePlan& plan) {
  if (static_cast<int>(plan.size()) != config.depth)
    core::throw_internal("slim: plan has {} blocks, model {}", plan.size(), config.depth);
  io::ViTConfig c = config;
  for (int b = 0; b < c.depth; ++b) {
    auto& bc = c.blocks[b];
    const auto& bp = plan[b];
    const int H = config.block_heads(b), M = config.block_mlp(b);
    for (int h : bp.heads)
      if (h < 0 || h >= H) core::throw_internal("slim: block {} head {} out of [0, {})", b, h, H);
    for (int j : bp.neurons)
      if (j < 0 || j >= M) core::throw_internal("slim: block {} neuron {} out of [0, {})", b, j, M);
    if (!bc.skip_attn && (!bp.attn || bp.heads.empty())) {
      bc.skip_attn = true;  // never zero heads: the whole branch goes
      bc.kept_heads.clear();
    } else if (!bc.skip_attn) {
      // kept_heads keeps the indices of the *original* model across repeated pruning.
      std::vector<int> old = bc.kept_heads;
      if (old.empty()) {
        old.resize(H);
        std::iota(old.begin(), old.end(), 0);
      }
      bc.kept_heads.clear();
      for (int h : bp.heads) bc.kept_heads.push_back(old.at(h));
      bc.num_heads = static_cast<int>(bp.heads.size());
    }
    if (!bc.skip_mlp && (!bp.mlp || bp.neurons.empty())) {
      bc.skip_mlp = true;
    } else if (!bc.skip_mlp) {
      bc.mlp_dim = static_cast<int>(bp.neurons.size());
    }
  }
  c.normalize(c.name);
  return c;
}

model::ViT slim(model::ViT& src, const StructurePlan& plan, const AblationMeans* means) {
  const auto& c0 = src->config();
  check_structured_supported(c0, "slim");
  model::ViT dst(slim_config(c0, plan));
  torch::NoGradGuard no_grad;
  // Everything outside the blocks is unchanged.
  copy_into(dst->patch_embed_proj->weight, src->patch_embed_proj->weight);
  copy_into(dst->patch_embed_proj->bias, src->patch_embed_proj->bias);
  for (auto [d, s] :
       {std::pair{&dst->cls_token, &src->cls_token}, std::pair{&dst->dist_token, &src->dist_token},
        std::pair{&dst->reg_token, &src->reg_token}})
    if (d->defined()) copy_into(*d, *s);
  copy_into(dst->pos_embed, src->pos_embed);
  copy_layer_norm(dst->norm, src->norm);
  copy_into(dst->head->weight, src->head->effective_weight());
  copy_into(dst->head->bias, src->head->bias);
  if (c0.distill_token) {
    copy_into(dst->head_dist->weight, src->head_dist->effective_weight());
    copy_into(dst->head_dist->bias, src->head_dist->bias);
  }
  for (int b = 0; b < c0.depth; ++b) {
    auto& s = src->block(b);
    auto& d = dst->block(b);
    const auto& bp = plan[b];
    if (d.attn) {
      copy_layer_norm(d.norm1, s.norm1);
      const int H = s.attn->heads, D = s.attn->head_dim;
      std::vector<int64_t> rows(3 * bp.heads.size() * D);
      // qkv rows in the new layout (part, kept head, d) so the reshape in forward still works.
      size_t r = 0;
      for (int part = 0; part < 3; ++part)
        for (int h : bp.heads)
          for (int k = 0; k < D; ++k) rows[r++] = static_cast<int64_t>(part) * H * D + h * D + k;
      const auto cols = head_proj_cols(bp.heads, D);
      const auto ri = index_tensor(rows), ci = index_tensor(cols);
      copy_into(d.attn->qkv->weight, s.attn->qkv->effective_weight().index_select(0, ri));
      if (s.attn->qkv->bias.defined())
        copy_into(d.attn->qkv->bias, s.attn->qkv->bias.index_select(0, ri));
      copy_into(d.attn->proj->weight, s.attn->proj->effective_weight().index_select(1, ci));
      copy_into(d.attn->proj->bias, s.attn->proj->bias);
    }
    if (d.mlp) {
      copy_layer_norm(d.norm2, s.norm2);
      const auto ni = index_tensor(std::vector<int64_t>(bp.neurons.begin(), bp.neurons.end()));
      copy_into(d.mlp->fc1->weight, s.mlp->fc1->effective_weight().index_select(0, ni));
      copy_into(d.mlp->fc1->bias, s.mlp->fc1->bias.index_select(0, ni));
      copy_into(d.mlp->fc2->weight, s.mlp->fc2->effective_weight().index_select(1, ni));
      copy_into(d.mlp->fc2->bias, s.mlp->fc2->bias);
    }
  }
  if (means != nullptr) fold_means(src, dst, plan, *means);
  dst->train(src->is_training());
  return dst;
}

}  // namespace vitopt::edit
