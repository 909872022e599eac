// Block weight sharing: the config edit (checked by ViTConfig::normalize), the owners' initial
// weights (a member's, or the group's mean) and the members' initial deltas.
#include "model/edit/share.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/edit/copy.h"
#include "model/edit/factor.h"

namespace vitopt::edit {
namespace {

// The Linears of one branch of a block (empty when that sub-block is skipped).
std::vector<model::LinearImpl*> branch_linears(model::BlockImpl& blk, bool attn) {
  if (attn)
    return blk.attn ? std::vector<model::LinearImpl*>{blk.attn->qkv.get(), blk.attn->proj.get()}
                    : std::vector<model::LinearImpl*>{};
  return blk.mlp ? std::vector<model::LinearImpl*>{blk.mlp->fc1.get(), blk.mlp->fc2.get()}
                 : std::vector<model::LinearImpl*>{};
}

// Sets a Linear that owns its weights to multiply by `w` (out, in): copied when dense, its best
// factors at the Linear's rank when low-rank.
void set_weight(model::LinearImpl& lin, const torch::Tensor& w) {
  if (lin.rank == 0) {
    lin.weight.copy_(w);
    return;
  }
  const auto [u, v] = low_rank_factors(w, lin.rank);
  lin.weight_u.copy_(u);
  lin.weight_v.copy_(v);
}

}  // namespace

model::ViT share_blocks(model::ViT& model, const ShareSpec& spec) {
  auto c = model->config();
  for (int b = 0; b < c.depth; ++b)
    if (c.blocks[static_cast<size_t>(b)].shares())
      core::throw_input("share: block {} already shares weights; share an unshared model", b);
  if (!spec.attn && !spec.mlp) core::throw_input("share: nothing to share (neither attn nor mlp)");
  std::vector<bool> grouped(static_cast<size_t>(c.depth), false);
  for (const ShareGroup& g : spec.groups) {
    if (g.blocks.empty()) core::throw_input("share: an empty group");
    for (size_t i = 0; i < g.blocks.size(); ++i) {
      const int b = g.blocks[i];
      if (b < 0 || b >= c.depth || grouped[static_cast<size_t>(b)] ||
          (i > 0 && b <= g.blocks[i - 1]))
        core::throw_input(
            "share: block {} cannot join a group (blocks in [0, {}), ascending, "
            "in one group only)",
            b, c.depth);
      grouped[static_cast<size_t>(b)] = true;
      if (i == 0) continue;
      auto& bc = c.blocks[static_cast<size_t>(b)];
      if (spec.attn && !bc.skip_attn) bc.attn_shared_with = g.blocks.front();
      if (spec.mlp && !bc.skip_mlp) bc.mlp_shared_with = g.blocks.front();
      if (bc.shares()) bc.delta_rank = spec.delta_rank;
    }
    if (g.init_from != -1 &&
        std::find(g.blocks.begin(), g.blocks.end(), g.init_from) == g.blocks.end())
      core::throw_input("share: block {} initializes a group it is not in", g.init_from);
  }
  c.normalize(c.name);  // refuses owners of a different shape
  auto dst = rebuild(model, c);  // the owners' own weights, every block's norms and biases
  torch::NoGradGuard no_grad;
  for (const ShareGroup& g : spec.groups) {
    const int owner = g.blocks.front();
    for (const bool attn : {true, false}) {
      if (attn ? !spec.attn : !spec.mlp) continue;
      auto owner_lins = branch_linears(dst->block(owner), attn);
      for (size_t k = 0; k < owner_lins.size(); ++k) {
        // The group's weight: one member's, or the mean of the members' (as each multiplied).
        if (g.init_from != owner) {
          torch::Tensor w;
          int members = 0;
          for (int b : g.blocks) {
            if (g.init_from >= 0 && b != g.init_from) continue;
            const auto lins = branch_linears(model->block(b), attn);
            if (lins.empty()) continue;  // a member without this branch does not share it
            const auto wb = plain_weight(*lins[k]);
            w = w.defined() ? w + wb : wb.clone();
            ++members;
          }
          // (A chosen member without this branch leaves the owner's own weights.)
          if (members > 0) set_weight(*owner_lins[k], w / static_cast<double>(members));
        }
        if (spec.delta_rank <= 0) continue;
        // Each member's delta: the best rank-r approximation of (its weight - the group's).
        const auto shared_w = plain_weight(*owner_lins[k]);
        for (size_t i = 1; i < g.blocks.size(); ++i) {
          const int b = g.blocks[i];
          const auto lins = branch_linears(dst->block(b), attn);
          if (lins.empty() || !lins[k]->delta_u.defined()) continue;
          auto* lin = lins[k];
          const auto diff = plain_weight(*branch_linears(model->block(b), attn)[k]) - shared_w;
          if (diff.abs().max().item<double>() == 0) continue;  // keep the LoRA start
          const auto [u, v] = low_rank_factors(diff, spec.delta_rank);
          lin->delta_u.copy_(u);
          lin->delta_v.copy_(v);
        }
      }
    }
  }
  return dst;
}

}  // namespace vitopt::edit
