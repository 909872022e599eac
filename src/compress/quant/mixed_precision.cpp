// Per-layer sensitivity and the knapsack bit allocation (see mixed_precision.h).
#include "compress/quant/mixed_precision.h"

#include <fmt/format.h>

#include <limits>

#include "compress/quant/calibration.h"
#include "core/error.h"
#include "core/progress.h"
#include "io/model_counts.h"

namespace vitopt::quant {

std::vector<Sensitivity> layer_sensitivity(model::ViT& folded, const torch::Tensor& images,
                                           const torch::Tensor& labels,
                                           const std::vector<int>& bits, const PtqOptions& o,
                                           bool quiet) {
  torch::NoGradGuard no_grad;
  // Units with weights of their own: a shared weight is allocated bits once, through its owner.
  std::vector<std::string> names;
  for (const auto& unit : model::quantizable_linears(folded))
    if (!model::unit_weight_name(folded, unit).empty()) names.push_back(unit);
  const auto ref = predict(folded, images);  // (S, K)
  const auto ref_logp = torch::log_softmax(ref, 1);
  const double ref_top1 = ref.argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
  std::vector<Sensitivity> table;
  core::ProgressOptions popts;
  popts.quiet = quiet;
  popts.unit = "layer";
  core::Progress progress("sensitivity", static_cast<int64_t>(names.size()), popts);
  int64_t done = 0;
  for (const auto& name : names) {
    auto w = linear_weight(folded, name);  // a view of the parameter
    const auto original = w.detach().clone();
    for (int b : bits) {
      io::WeightQuant spec{b, o.w_symmetric, o.w_per_channel};
      const auto rows = spec.per_channel ? original : original.reshape({1, -1});
      auto [lo, hi] = observe_rows(rows, b, spec.symmetric, o.w_observer);
      w.copy_(model::quantize_weight(original, spec, lo, hi).dequantize());
      const auto logits = predict(folded, images);
      Sensitivity s;
      s.layer = name;
      s.bits = b;
      s.kl = (ref_logp.exp() * (ref_logp - torch::log_softmax(logits, 1)))
                 .sum(1)
                 .mean()
                 .item<double>();
      s.top1_drop =
          100.0 * (ref_top1 - logits.argmax(1).eq(labels).to(torch::kDouble).mean().item<double>());
      s.bytes = io::quantized_weight_bytes(original.size(0), original.size(1), spec);
      table.push_back(s);
    }
    w.copy_(original);
    ++done;
    progress.update(done, done);
  }
  progress.finish(fmt::format("{} layers x {} widths", names.size(), bits.size()));
  return table;
}

BitAllocation allocate_bits(const std::vector<Sensitivity>& table, int64_t budget,
                            int64_t fixed_bytes) {
  // Group the options by layer (in first-seen order).
  std::vector<std::string> layers;
  std::map<std::string, std::vector<const Sensitivity*>> options;
  for (const auto& s : table) {
    if (!options.count(s.layer)) layers.push_back(s.layer);
    options[s.layer].push_back(&s);
  }
  int64_t min_bytes = 0;
  for (const auto& l : layers) {
    int64_t m = std::numeric_limits<int64_t>::max();
    for (const auto* s : options[l]) m = std::min(m, s->bytes);
    min_bytes += m;
  }
  if (layers.empty() || budget < min_bytes) {
    core::throw_input(
        "--size-budget-mb: {:.4f} MB cannot be met; the smallest allocation of these "
        "bit widths takes {:.4f} MB (weights {:.4f} MB + the rest {:.4f} MB)",
        static_cast<double>(budget + fixed_bytes) / 1e6,
        static_cast<double>(min_bytes + fixed_bytes) / 1e6, static_cast<double>(min_bytes) / 1e6,
        static_cast<double>(fixed_bytes) / 1e6);
  }
  // Sizes in units (rounded up, so the real total never exceeds the budget).
  // Exact bytes for small budgets; for large ones the round-up costs at most one unit per layer.
  const int64_t unit = std::max<int64_t>(1, budget / 20000);
  const auto units = [unit](int64_t bytes) { return (bytes + unit - 1) / unit; };
  const int64_t cap = budget / unit;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> best(static_cast<size_t>(cap + 1), inf), next;
  best[0] = 0;
  std::vector<std::vector<int>> choice(layers.size(),
                                       std::vector<int>(static_cast<size_t>(cap + 1), -1));
  for (size_t li = 0; li < layers.size(); ++li) {
    next.assign(static_cast<size_t>(cap + 1), inf);
    const auto& opts = options[layers[li]];
    for (int64_t used = 0; used <= cap; ++used) {
      if (best[static_cast<size_t>(used)] == inf) continue;
      for (size_t k = 0; k < opts.size(); ++k) {
        const int64_t to = used + units(opts[k]->bytes);
        if (to > cap) continue;
        const double cost = best[static_cast<size_t>(used)] + opts[k]->kl;
        if (cost < next[static_cast<size_t>(to)]) {
          next[static_cast<size_t>(to)] = cost;
          choice[li][static_cast<size_t>(to)] = static_cast<int>(k);
        }
      }
    }
    best.swap(next);
  }
  int64_t at = -1;
  for (int64_t u = 0; u <= cap; ++u) {
    if (best[static_cast<size_t>(u)] < inf &&
        (at < 0 || best[static_cast<size_t>(u)] < best[static_cast<size_t>(at)]))
      at = u;
  }
  if (at < 0) {  // rounding to units made it infeasible although bytes fit: say so plainly
    core::throw_input(
        "--size-budget-mb: too tight for the allocation granularity; raise it slightly");
  }
  BitAllocation a;
  a.predicted_kl = best[static_cast<size_t>(at)];
  for (size_t li = layers.size(); li-- > 0;) {
    const int k = choice[li][static_cast<size_t>(at)];
    const auto* s = options[layers[li]][static_cast<size_t>(k)];
    a.bits[s->layer] = s->bits;
    a.weight_bytes += s->bytes;
    at -= units(s->bytes);
  }
  return a;
}

}  // namespace vitopt::quant
