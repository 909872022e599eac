// SVD in float64 (a full-rank split reproduces W to float32 rounding); the whitened right factor
// is mapped back with a triangular solve rather than an explicit inverse of L.
#include "compress/lowrank/spectrum.h"

#include "core/error.h"

namespace vitopt::lowrank {

LayerSpectrum::LayerSpectrum(const torch::Tensor& weight, const torch::Tensor& whiten)
    : whiten_(whiten.defined() ? whiten.to(torch::kDouble) : whiten) {
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kDouble);
  if (whiten_.defined()) w = w.mm(whiten_);
  std::tie(u_, s_, vh_) = torch::linalg::svd(w, /*full_matrices=*/false, c10::nullopt);
}

std::vector<double> LayerSpectrum::singular() const {
  const auto s = s_.contiguous();
  return {s.data_ptr<double>(), s.data_ptr<double>() + s.numel()};
}

std::pair<torch::Tensor, torch::Tensor> LayerSpectrum::factors(int64_t rank) const {
  if (rank < 1 || rank > full_rank())
    core::throw_input("low-rank factors: rank {} outside [1, {}] for a {}x{} weight", rank,
                      full_rank(), u_.size(0), vh_.size(1));
  torch::NoGradGuard no_grad;
  const auto root = s_.slice(0, 0, rank).sqrt();            // (r)
  const auto U = u_.slice(1, 0, rank) * root.unsqueeze(0);  // (out, r)
  auto V = root.unsqueeze(1) * vh_.slice(0, 0, rank);       // (r, in), in whitened space
  if (whiten_.defined()) {
    // V_w = V L^-1, i.e. V_w L = V: solve L^T V_w^T = V^T (L^T upper triangular).
    V = at::linalg_solve_triangular(whiten_.t(), V.t(), /*upper=*/true).t();
  }
  return {U.to(torch::kFloat).contiguous(), V.to(torch::kFloat).contiguous()};
}

torch::Tensor LayerSpectrum::approximation(int64_t rank) const {
  auto [u, v] = factors(rank);
  return u.mm(v);
}

}  // namespace vitopt::lowrank
