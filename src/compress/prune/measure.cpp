// Accuracy on the test split, interleaved side-by-side timing, weight histograms, size counts.
#include "compress/prune/measure.h"

#include <fmt/format.h>

#include <algorithm>

#include "compress/prune/groups.h"
#include "compress/prune/masks.h"
#include "core/timer.h"
#include "data/loader.h"
#include "io/model_counts.h"
#include "train/data_bridge.h"
#include "train/evaluate.h"

namespace vitopt::prune {

nlohmann::json Accuracy::to_json() const {
  return {{"images", count}, {"top1", top1}, {"top3", top3}, {"top5", top5}, {"loss", loss}};
}

nlohmann::json SpeedComparison::to_json() const {
  return {{"batch", batch}, {"runs", runs}, {"dense_ms", a_ms}, {"pruned_ms", b_ms},
          {"speedup", speedup}};
}

Accuracy test_accuracy(model::ViT& model, const std::string& data, size_t limit, bool quiet,
                       const std::string& label) {
  const auto& config = model->config();
  auto ds = train::open_dataset_for(data, config, data::Split::Test, limit, 0);
  train::check_dataset_fits(*ds, config);
  data::LoaderOptions lopts;
  lopts.batch_size = 256;
  lopts.workers = 1;
  lopts.transform = train::eval_transform(config);
  data::DataLoader loader(ds, lopts);
  train::EvalOptions eopts;
  eopts.keep_logits = true;
  eopts.quiet = quiet;
  eopts.label = label;
  const auto r = train::evaluate(model, loader, eopts);
  Accuracy a;
  a.count = r.count;
  a.top1 = r.top1;
  a.top5 = r.top5;
  a.loss = r.loss;
  if (r.count > 0) {
    const int64_t k = std::min<int64_t>(3, r.logits.size(1));
    auto top = std::get<1>(r.logits.topk(k, 1));  // (count, k)
    a.top3 = top.eq(r.labels.unsqueeze(1)).any(1).sum().item<double>() / static_cast<double>(r.count);
  }
  return a;
}

SpeedComparison compare_speed(model::ViT& a, model::ViT& b, int64_t batch, int runs) {
  torch::NoGradGuard no_grad;
  a->eval();
  b->eval();
  const auto& c = a->config();
  auto x = torch::randn({batch, c.in_channels, c.image_size, c.image_size});
  for (int i = 0; i < 3; ++i) {  // warm-up: allocator, oneDNN/BLAS pools
    a->forward(x);
    b->forward(x);
  }
  std::vector<double> ta, tb;
  for (int i = 0; i < runs; ++i) {
    core::Stopwatch s1;
    a->forward(x);
    ta.push_back(s1.millis());
    core::Stopwatch s2;
    b->forward(x);
    tb.push_back(s2.millis());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  SpeedComparison s;
  s.batch = batch;
  s.runs = runs;
  s.a_ms = median(ta);
  s.b_ms = median(tb);
  s.speedup = s.b_ms > 0 ? s.a_ms / s.b_ms : 0;
  return s;
}

nlohmann::json weight_histogram(model::ViT& model, int bins, double hi) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flats;
  for (auto& [name, lin] : prunable_linears(model)) flats.push_back(lin->effective_weight().reshape({-1}));
  auto all = torch::cat(flats);
  if (hi <= 0) hi = all.abs().max().item<double>();
  auto counts = torch::histc(all.clamp(-hi, hi), bins, -hi, hi);
  auto acc = counts.contiguous();
  std::vector<int64_t> v(acc.numel());
  for (int64_t i = 0; i < acc.numel(); ++i) v[i] = static_cast<int64_t>(acc[i].item<float>());
  return {{"lo", -hi}, {"hi", hi}, {"bins", bins}, {"counts", v}};
}

nlohmann::json size_json(model::ViT& model) {
  const auto& c = model->config();
  const auto sp = sparsity_stats(model);
  const int64_t params = io::count_params(c);
  return {{"params", params},
          {"macs", io::count_macs(c)},
          {"nonzero_params", params - sp["zeros"].get<int64_t>()},
          {"sparsity", sp["sparsity"]},
          {"heads", plan_heads(full_plan(c))},
          {"neurons", plan_neurons(full_plan(c))}};
}

}  // namespace vitopt::prune
