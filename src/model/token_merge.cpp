// Bipartite soft matching and the size-weighted merge (see token_merge.h for the rule).
#include "model/token_merge.h"

#include <limits>

#include "core/error.h"

namespace vitopt::model {

TokenMatch bipartite_soft_matching(const torch::Tensor& metric, int64_t r, bool distill_token) {
  torch::NoGradGuard no_grad;
  const int64_t N = metric.size(1), prefix = distill_token ? 2 : 1;
  if (r < 0 || r > (N - prefix) / 2)
    core::throw_internal("token merge: r = {} with {} tokens (at most {})", r, N, (N - prefix) / 2);
  const auto unit = metric / metric.norm(2, -1, true);                // (B, N, D)
  const auto a = unit.slice(1, 0, N, 2), b = unit.slice(1, 1, N, 2);  // (B, |A|, D), (B, |B|, D)
  auto scores = torch::matmul(a, b.transpose(-1, -2));                // (B, |A|, |B|)
  const float ninf = -std::numeric_limits<float>::infinity();
  scores.select(1, 0).fill_(ninf);                   // the class token merges into nothing
  if (distill_token) scores.select(2, 0).fill_(ninf);  // nothing merges into the distillation token
  const auto [best, best_b] = scores.max(-1);          // (B, |A|): candidate per A token
  // Stable: equal similarities keep token order, as the runtime's sort does.
  const auto order = std::get<1>(torch::sort(best, /*stable=*/true, /*dim=*/-1, /*descending=*/true));
  TokenMatch m;
  m.distill_token = distill_token;
  m.src = order.slice(1, 0, r);
  m.unmerged = std::get<0>(order.slice(1, r).sort(-1));
  m.dst = best_b.gather(1, m.src);
  return m;
}

torch::Tensor merge_sum(const TokenMatch& m, const torch::Tensor& x) {
  const int64_t N = x.size(1), C = x.size(2);
  const auto a = x.slice(1, 0, N, 2), b = x.slice(1, 1, N, 2);
  auto expand = [&](const torch::Tensor& idx) { return idx.unsqueeze(-1).expand({-1, -1, C}); };
  const auto unm = a.gather(1, expand(m.unmerged));                            // (B, |A| - r, C)
  const auto dst = b.scatter_add(1, expand(m.dst), a.gather(1, expand(m.src)));  // (B, |B|, C)
  if (!m.distill_token) return torch::cat({unm, dst}, 1);
  return torch::cat({unm.slice(1, 0, 1), dst.slice(1, 0, 1), unm.slice(1, 1), dst.slice(1, 1)}, 1);
}

std::pair<torch::Tensor, torch::Tensor> merge_weighted(const TokenMatch& m, const torch::Tensor& x,
                                                       const torch::Tensor& sizes) {
  const auto s = sizes.defined() ? sizes : torch::ones({x.size(0), x.size(1), 1}, x.options());
  const auto merged_sizes = merge_sum(m, s);                        // (B, N - r, 1)
  return {merge_sum(m, x * s) / merged_sizes, merged_sizes};
}

}  // namespace vitopt::model
