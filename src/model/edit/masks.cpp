// Mask selection for unstructured (per-layer / global) and N:M sparsity, exact counts with a
// deterministic tie rule, and sparsity statistics.
#include "model/edit/masks.h"

#include <fmt/format.h>

#include <cmath>

#include "model/edit/plan.h"
#include "core/error.h"

namespace vitopt::edit {
namespace {

// Mask (n) with exactly k zeros at the k lowest scores; stable sort = earlier index first on ties.
torch::Tensor lowest_k_mask(const torch::Tensor& flat_scores, int64_t k) {
  auto mask = torch::ones_like(flat_scores, torch::kFloat);
  if (k <= 0) return mask;
  auto order = std::get<1>(flat_scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  mask.index_fill_(0, order.slice(0, 0, k), 0.0);
  return mask;
}

void check_sparsity(double s) {
  if (!(s >= 0 && s < 1))
    core::throw_input("--sparsity: expected a fraction in [0, 1), got {}", s);
}

int64_t count_to_prune(double s, int64_t n) {
  return std::min<int64_t>(n, static_cast<int64_t>(std::llround(s * static_cast<double>(n))));
}

}  // namespace

TensorMap masks_per_layer(const TensorMap& scores, double sparsity) {
  check_sparsity(sparsity);
  TensorMap out;
  for (const auto& [name, s] : scores) {
    auto flat = s.detach().reshape({-1}).to(torch::kFloat);
    out[name] = lowest_k_mask(flat, count_to_prune(sparsity, flat.numel())).view(s.sizes());
  }
  return out;
}

TensorMap masks_global(const TensorMap& scores, double sparsity) {
  check_sparsity(sparsity);
  std::vector<torch::Tensor> flats;
  for (const auto& [name, s] : scores) flats.push_back(s.detach().reshape({-1}).to(torch::kFloat));
  if (flats.empty()) return {};
  auto all = torch::cat(flats);  // (total)
  auto mask = lowest_k_mask(all, count_to_prune(sparsity, all.numel()));
  TensorMap out;
  int64_t offset = 0;
  for (const auto& [name, s] : scores) {
    out[name] = mask.slice(0, offset, offset + s.numel()).view(s.sizes()).clone();
    offset += s.numel();
  }
  return out;
}

TensorMap masks_nm(const TensorMap& scores, int n, int m) {
  if (m < 1 || n < 1 || n > m)
    core::throw_input("--nm: expected N:M with 1 <= N <= M (e.g. 2:4), got {}:{}", n, m);
  TensorMap out;
  for (const auto& [name, s] : scores) {
    const int64_t rows = s.size(0), cols = s.size(1);
    if (cols % m != 0)
      core::throw_input("--nm {}:{}: layer {} has {} inputs, not a multiple of {}", n, m, name,
                        cols, m);
    auto groups = s.detach().to(torch::kFloat).reshape({rows, cols / m, m});  // (out, in/M, M)
    auto keep = std::get<1>(groups.topk(n, /*dim=*/2, /*largest=*/true, /*sorted=*/true));
    auto mask = torch::zeros_like(groups).scatter_(2, keep, 1.0);
    out[name] = mask.reshape({rows, cols});
  }
  return out;
}

void apply_masks(model::ViT& model, const TensorMap& masks) {
  for (auto& [name, lin] : prunable_linears(model)) {
    if (auto it = masks.find(name); it != masks.end()) lin->set_mask(it->second);
  }
}

void reapply_masks(model::ViT& model) {
  torch::NoGradGuard no_grad;
  for (auto& module : model->modules(/*include_self=*/false)) {
    if (auto* lin = module->as<model::LinearImpl>(); lin && lin->mask.defined() && lin->rank == 0)
      lin->weight.mul_(lin->mask);
  }
}

nlohmann::json sparsity_stats(model::ViT& model) {
  torch::NoGradGuard no_grad;
  nlohmann::json layers = nlohmann::json::array();
  int64_t zeros = 0, total = 0;
  for (auto& [name, lin] : prunable_linears(model)) {
    auto w = lin->effective_weight();
    const int64_t z = w.eq(0).sum().item<int64_t>(), n = w.numel();
    zeros += z;
    total += n;
    layers.push_back({{"name", name},
                      {"zeros", z},
                      {"total", n},
                      {"sparsity", static_cast<double>(z) / static_cast<double>(n)}});
  }
  return {{"zeros", zeros},
          {"total", total},
          {"sparsity", total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0},
          {"layers", layers}};
}

}  // namespace vitopt::edit
