#include "compress/circuits/circuit_slim.h"

#include "model/edit/slim.h"

namespace vitopt::circuits {

edit::StructurePlan circuit_plan(const Circuit& k) {
  edit::StructurePlan plan(k.heads.size());
  for (size_t b = 0; b < plan.size(); ++b) {
    auto& p = plan[b];
    p.attn = k.attn_live(static_cast<int>(b));
    p.mlp = k.mlp_live(static_cast<int>(b));
    for (size_t h = 0; h < k.heads[b].size(); ++h)
      if (p.attn && k.heads[b][h]) p.heads.push_back(static_cast<int>(h));
    for (size_t j = 0; j < k.neurons[b].size(); ++j)
      if (p.mlp && k.neurons[b][j]) p.neurons.push_back(static_cast<int>(j));
  }
  return plan;
}

model::ViT slim_circuit(AblatedModel& ablated, const Circuit& k) {
  const bool zero = ablated.ablation() == Ablation::Zero;
  auto slim = edit::slim(ablated.model(), circuit_plan(k), zero ? nullptr : &ablated.means());
  if (!k.embed) {
    // The embedding's output no longer depends on the image: the tokens' constant lives in
    // pos_embed (what slimming folded into it before is part of that constant already).
    // With no_embed_class the prefix tokens carry their own rows (cls, dist, registers, in
    // token order) and pos_embed the patches'; otherwise pos_embed carries every row.
    torch::NoGradGuard no_grad;
    auto& orig = ablated.model();
    const auto mean = ablated.embed_mean().unsqueeze(0);  // (1, N, C)
    int64_t row = 0;
    auto set_constant = [&](torch::Tensor& dst, const torch::Tensor& src, int64_t rows) {
      const auto folded = dst.clone() - src;  // what slimming folded in (1, rows, C)
      dst.copy_(folded + (zero ? torch::zeros_like(folded) : mean.slice(1, row, row + rows)));
      row += rows;
    };
    const bool own_rows = slim->config().no_embed_class;
    for (auto [dst, src] : {std::pair{&slim->cls_token, &orig->cls_token},
                            std::pair{&slim->dist_token, &orig->dist_token},
                            std::pair{&slim->reg_token, &orig->reg_token}}) {
      if (!dst->defined()) continue;
      if (own_rows) {
        set_constant(*dst, *src, dst->size(1));
      } else {
        dst->zero_();  // its content is part of the token's mean in pos_embed's rows
      }
    }
    slim->patch_embed_proj->weight.zero_();
    slim->patch_embed_proj->bias.zero_();
    set_constant(slim->pos_embed, orig->pos_embed, slim->pos_embed.size(1));
  }
  return slim;
}

}  // namespace vitopt::circuits
