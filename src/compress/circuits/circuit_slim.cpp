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
    torch::NoGradGuard no_grad;
    const auto folded = slim->pos_embed.clone() - ablated.model()->pos_embed;  // (1, N, C)
    slim->patch_embed_proj->weight.zero_();
    slim->patch_embed_proj->bias.zero_();
    slim->cls_token.zero_();
    if (slim->dist_token.defined()) slim->dist_token.zero_();
    slim->pos_embed.copy_(folded +
                          (zero ? torch::zeros_like(folded) : ablated.embed_mean().unsqueeze(0)));
  }
  return slim;
}

}  // namespace vitopt::circuits
