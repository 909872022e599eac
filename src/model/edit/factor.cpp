// Truncated-SVD factors and the model edit that sets Linear ranks (through copy.h's rebuild).
#include "model/edit/factor.h"

#include <algorithm>

#include "core/error.h"
#include "model/edit/copy.h"

namespace vitopt::edit {

std::pair<torch::Tensor, torch::Tensor> low_rank_factors(const torch::Tensor& weight,
                                                         int64_t rank) {
  const int64_t full = std::min(weight.size(0), weight.size(1));
  if (rank < 1 || rank > full)
    core::throw_input("low-rank factors: rank {} outside [1, {}] for a {}x{} weight", rank, full,
                      weight.size(0), weight.size(1));
  torch::NoGradGuard no_grad;
  // float64 SVD: the factors of a full-rank split reproduce W to float32 rounding.
  auto [u, s, vh] = torch::linalg::svd(weight.detach().to(torch::kDouble), /*full_matrices=*/false,
                                       /*driver=*/c10::nullopt);
  const auto root = s.slice(0, 0, rank).sqrt();                           // (r)
  auto U = (u.slice(1, 0, rank) * root.unsqueeze(0)).to(torch::kFloat);   // (out, r)
  auto V = (root.unsqueeze(1) * vh.slice(0, 0, rank)).to(torch::kFloat);  // (r, in)
  return {U.contiguous(), V.contiguous()};
}

std::vector<BlockRanks> model_ranks(const io::ViTConfig& c) {
  std::vector<BlockRanks> out;
  for (const auto& bc : c.blocks) out.push_back({bc.qkv_rank, bc.proj_rank, bc.fc1_rank, bc.fc2_rank});
  return out;
}

model::ViT factorize(model::ViT& model, const std::vector<BlockRanks>& ranks) {
  auto c = model->config();
  if (static_cast<int>(ranks.size()) != c.depth)
    core::throw_internal("factorize: {} rank entries for {} blocks", ranks.size(), c.depth);
  for (int b = 0; b < c.depth; ++b) {
    auto& bc = c.blocks[b];
    bc.qkv_rank = ranks[b].qkv;
    bc.proj_rank = ranks[b].proj;
    bc.fc1_rank = ranks[b].fc1;
    bc.fc2_rank = ranks[b].fc2;
  }
  c.normalize(c.name);
  return rebuild(model, c);
}

}  // namespace vitopt::edit
