// Input second moments through Linear input hooks, and their Cholesky whitening.
#include "compress/lowrank/activation_aware.h"

#include <algorithm>

#include "core/error.h"

namespace vitopt::lowrank {
namespace {

model::LinearImpl* find_linear(model::ViT& model, const std::string& name) {
  auto mods = model->named_modules("", /*include_self=*/false);
  auto* found = mods.find(name);
  return found ? (*found)->as<model::LinearImpl>() : nullptr;
}

}  // namespace

std::map<std::string, torch::Tensor> input_second_moments(
    model::ViT& model, const std::vector<std::string>& linears,
    const std::vector<torch::Tensor>& images) {
  struct Acc {
    model::LinearImpl* linear;
    torch::Tensor sum;  // (in, in) float64
    int64_t rows = 0;
  };
  std::map<std::string, Acc> acc;
  for (const auto& name : linears) {
    auto* lin = find_linear(model, name);
    if (lin == nullptr) core::throw_input("activation statistics: '{}' is not a Linear", name);
    if (lin->input_transform)
      core::throw_input(
          "activation statistics: '{}' already has an input hook (a quantized "
          "model?); factorize the fp32 model",
          name);
    acc[name] = {lin, torch::zeros({lin->in_features, lin->in_features}, torch::kDouble), 0};
  }
  for (auto& [name, a] : acc) {
    Acc* p = &a;
    a.linear->input_transform = [p](const torch::Tensor& x) {
      const auto rows = x.detach().reshape({-1, x.size(-1)}).to(torch::kDouble);  // (n, in)
      p->sum.add_(rows.t().mm(rows));
      p->rows += rows.size(0);
      return x;
    };
  }
  const bool was_training = model->is_training();
  model->eval();
  {
    torch::NoGradGuard no_grad;
    for (const auto& x : images) model->forward(x);
  }
  model->train(was_training);
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, a] : acc) {
    a.linear->input_transform = nullptr;
    out[name] = a.sum / static_cast<double>(std::max<int64_t>(a.rows, 1));
  }
  return out;
}

torch::Tensor whitening(const torch::Tensor& second_moment, double damping) {
  auto s = second_moment.to(torch::kDouble);
  const double mean_diag = std::max(s.diagonal().mean().item<double>(), 1e-30);
  s = s + torch::eye(s.size(0), torch::kDouble) * (damping * mean_diag);
  s = (s + s.t()) / 2;  // exact symmetry for Cholesky
  return torch::linalg::cholesky(s);
}

}  // namespace vitopt::lowrank
