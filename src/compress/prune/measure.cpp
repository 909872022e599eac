// Test accuracy through eval's helper, weight histograms, size counts.
#include "compress/prune/measure.h"

#include <fmt/format.h>

#include <algorithm>

#include "io/model_counts.h"
#include "model/edit/masks.h"
#include "model/edit/plan.h"

namespace vitopt::prune {

Accuracy test_accuracy(model::ViT& model, const std::string& data, size_t limit, bool quiet,
                       const std::string& label) {
  eval::AccuracyOptions o;
  o.quiet = quiet;
  o.label = label;
  return eval::split_accuracy(model, data, data::Split::Test, limit, o);
}

nlohmann::json weight_histogram(model::ViT& model, int bins, double hi) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flats;
  for (auto& [name, lin] : edit::prunable_linears(model)) flats.push_back(lin->effective_weight().reshape({-1}));
  auto all = torch::cat(flats);
  if (hi <= 0) hi = all.abs().max().item<double>();
  auto counts = torch::histc(all.clamp(-hi, hi), bins, -hi, hi);
  auto acc = counts.contiguous();
  std::vector<int64_t> v(acc.numel());
  for (int64_t i = 0; i < acc.numel(); ++i) v[i] = static_cast<int64_t>(acc[i].item<float>());
  return {{"lo", -hi}, {"hi", hi}, {"bins", bins}, {"counts", v}};
}

torch::Tensor logits_of(model::ViT& m, const std::vector<torch::Tensor>& images) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (const auto& x : images) out.push_back(m->forward(x));
  return torch::cat(out);
}

double mean_kl(const torch::Tensor& reference, const torch::Tensor& other) {
  const auto lp = torch::log_softmax(reference.to(torch::kDouble), 1);
  const auto lq = torch::log_softmax(other.to(torch::kDouble), 1);
  return (lp.exp() * (lp - lq)).sum(1).mean().item<double>();
}

nlohmann::json size_json(model::ViT& model) {
  const auto& c = model->config();
  const auto sp = edit::sparsity_stats(model);
  const int64_t params = io::count_params(c);
  return {{"params", params},
          {"macs", io::count_macs(c)},
          {"nonzero_params", params - sp["zeros"].get<int64_t>()},
          {"sparsity", sp["sparsity"]},
          {"heads", edit::plan_heads(edit::full_plan(c))},
          {"neurons", edit::plan_neurons(edit::full_plan(c))}};
}

}  // namespace vitopt::prune
