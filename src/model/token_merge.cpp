// Bipartite soft matching and the size-weighted merge (see token_merge.h for the rule).
#include "model/token_merge.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/error.h"

namespace vitopt::model {

TokenMatch bipartite_soft_matching(const torch::Tensor& metric, int64_t r, int64_t prefix_tokens) {
  torch::NoGradGuard no_grad;
  const int64_t N = metric.size(1), prefix = prefix_tokens;
  if (prefix < 0 || r < 0 || r > std::max<int64_t>(N - prefix, 0) / 2)
    core::throw_internal("token merge: r = {} with {} tokens, {} prefix (at most {})", r, N, prefix,
                         std::max<int64_t>(N - prefix, 0) / 2);
  const auto unit = metric / metric.norm(2, -1, true);                // (B, N, D)
  const auto a = unit.slice(1, 0, N, 2), b = unit.slice(1, 1, N, 2);  // (B, |A|, D), (B, |B|, D)
  auto scores = torch::matmul(a, b.transpose(-1, -2));                // (B, |A|, |B|)
  const float ninf = -std::numeric_limits<float>::infinity();
  // Prefix tokens t < prefix: the even ones (in A) merge into nothing, nothing merges into the
  // odd ones (in B).
  scores.slice(1, 0, (prefix + 1) / 2).fill_(ninf);
  scores.slice(2, 0, prefix / 2).fill_(ninf);
  const auto [best, best_b] = scores.max(-1);  // (B, |A|): candidate per A token
  // Stable: equal similarities keep token order, as the runtime's sort does.
  const auto order = std::get<1>(torch::sort(best, /*stable=*/true, /*dim=*/-1, /*descending=*/true));
  TokenMatch m;
  m.prefix_tokens = prefix;
  m.src = order.slice(1, 0, r);
  m.unmerged = std::get<0>(order.slice(1, r).sort(-1));
  m.dst = best_b.gather(1, m.src);
  return m;
}

torch::Tensor merge_sum(const TokenMatch& m, const torch::Tensor& x) {
  const int64_t N = x.size(1), C = x.size(2), prefix = m.prefix_tokens;
  const auto a = x.slice(1, 0, N, 2), b = x.slice(1, 1, N, 2);
  auto expand = [&](const torch::Tensor& idx) { return idx.unsqueeze(-1).expand({-1, -1, C}); };
  const auto unm = a.gather(1, expand(m.unmerged));                            // (B, |A| - r, C)
  const auto dst = b.scatter_add(1, expand(m.dst), a.gather(1, expand(m.src)));  // (B, |B|, C)
  // The prefix tokens first, in their original order (A and B alternate), then the rest of the
  // unmerged A tokens, then the rest of B. The protected A tokens are unm's first (prefix+1)/2.
  std::vector<torch::Tensor> parts;
  for (int64_t t = 0; t < prefix; ++t)
    parts.push_back(t % 2 == 0 ? unm.slice(1, t / 2, t / 2 + 1) : dst.slice(1, t / 2, t / 2 + 1));
  parts.push_back(unm.slice(1, (prefix + 1) / 2));
  parts.push_back(dst.slice(1, prefix / 2));
  return torch::cat(parts, 1);
}

std::pair<torch::Tensor, torch::Tensor> merge_weighted(const TokenMatch& m, const torch::Tensor& x,
                                                       const torch::Tensor& sizes) {
  const auto s = sizes.defined() ? sizes : torch::ones({x.size(0), x.size(1), 1}, x.options());
  const auto merged_sizes = merge_sum(m, s);                        // (B, N - r, 1)
  return {merge_sum(m, x * s) / merged_sizes, merged_sizes};
}

}  // namespace vitopt::model
