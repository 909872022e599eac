#include "compress/circuits/acdc.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/progress.h"

namespace vitopt::circuits {

AcdcResult acdc(AblatedModel& model, const std::vector<Node>& nodes, double threshold, bool quiet) {
  return acdc(
      model.model()->config(),
      [&](const Circuit& circuit, int from_block) { return model.metric(circuit, from_block); },
      nodes, threshold, quiet);
}

AcdcResult acdc(const io::ViTConfig& config, const CircuitMetric& metric,
                const std::vector<Node>& nodes, double threshold, bool quiet) {
  if (!(threshold >= 0)) core::throw_input("--threshold: expected a value >= 0, got {}", threshold);
  AcdcResult r;
  r.circuit = Circuit::full(config);
  const double base = metric(r.circuit, 0);
  r.full_metric = base;
  r.metric = base;
  core::ProgressOptions popts;
  popts.quiet = quiet;
  popts.unit = "node";
  core::Progress progress(fmt::format("  acdc {}", threshold), static_cast<int64_t>(nodes.size()),
                          popts);
  int64_t done = 0;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it, ++done) {
    const Node& n = *it;
    if (!r.circuit.kept(n)) continue;  // went with its block or sub-block
    Circuit trial = r.circuit;
    trial.set(n, false);
    const double m = metric(trial, n.kind == NodeKind::Embed ? 0 : n.block);
    ++r.forwards;
    const bool remove = m - r.metric < threshold;
    r.steps.push_back({n.name, m, remove});
    if (remove) {
      r.circuit = std::move(trial);
      r.metric = m;
    }
    progress.update(done + 1, done + 1, fmt::format("metric {:.4g}", r.metric));
  }
  progress.finish(fmt::format(
      "  acdc threshold {}: {} heads, {} neurons kept, metric {:.4g} "
      "(full {:.4g}), {} forwards",
      threshold, r.circuit.kept_heads(), r.circuit.kept_neurons(), r.metric, base, r.forwards));
  return r;
}

}  // namespace vitopt::circuits
