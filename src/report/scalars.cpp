// scalar_metrics and metrics.csv.
#include "report/scalars.h"

#include <fmt/format.h>

namespace vitopt::report {

namespace {

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string number(std::optional<double> v) {
  if (!v) return "";
  return fmt::format("{}", *v);  // shortest round-trip representation
}

std::optional<double> opt(const std::optional<int64_t>& v) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

}  // namespace

Scalars scalar_metrics(const ModelMetrics& m) {
  const auto& c = m.classification;
  const auto& k = m.confidence;
  const auto& e = m.efficiency;
  auto d = [](auto v) { return std::optional<double>(static_cast<double>(v)); };
  return {
      {"top1", d(c.top1)},
      {"top3", d(c.top3)},
      {"top5", d(c.top5)},
      {"loss", d(c.loss)},
      {"macro_precision", d(c.macro_precision)},
      {"macro_recall", d(c.macro_recall)},
      {"macro_f1", d(c.macro_f1)},
      {"mean_max_prob", d(k.mean_max_prob)},
      {"mean_max_prob_correct", k.mean_max_prob_correct},
      {"mean_max_prob_incorrect", k.mean_max_prob_incorrect},
      {"confidence_gap", k.gap},
      {"mean_entropy", d(k.mean_entropy)},
      {"ece", d(k.ece)},
      {"params", d(e.params)},
      {"nonzero_params", opt(e.nonzero_params)},
      {"macs", d(e.macs)},
      {"flops", d(e.flops)},
      {"file_bytes", d(e.file_bytes)},
      {"latency_p50_ms", d(e.latency.p50_ms)},
      {"latency_p50_spread_ms", d(e.latency.p50_spread_ms)},
      {"latency_p90_ms", d(e.latency.p90_ms)},
      {"latency_p99_ms", d(e.latency.p99_ms)},
      {"latency_mean_ms", d(e.latency.mean_ms)},
      {"throughput_images_per_s", d(e.throughput.images_per_s)},
      {"peak_rss_bytes", opt(e.memory.peak_rss_bytes)},
      {"allocator_peak_bytes", opt(e.memory.allocator_peak_bytes)},
      {"energy_j_per_image", e.energy.joules_per_image},
      {"energy_dram_j_per_image", e.energy.dram_joules_per_image},
      {"efficiency_score", d(e.efficiency_score)},
  };
}

std::string metrics_csv(const MetricsReport& r) {
  std::vector<std::string> header = {"label", "path", "precision", "engine", "is_baseline"};
  if (!r.models.empty())
    for (const auto& [name, v] : scalar_metrics(r.models.front())) header.push_back(name);
  for (const char* h : {"pareto_latency", "pareto_size", "baseline", "agreement_with_baseline",
                        "delta_top1", "delta_macro_f1", "delta_latency_p50_ms", "delta_file_bytes"})
    header.push_back(h);
  std::string out;
  auto row = [&out](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      out += csv_cell(cells[i]);
    }
    out += "\n";
  };
  row(header);
  for (const auto& m : r.models) {
    std::vector<std::string> cells = {m.label, m.path, m.precision, m.engine,
                                      m.is_baseline ? "1" : "0"};
    for (const auto& [name, v] : scalar_metrics(m)) cells.push_back(number(v));
    cells.push_back(m.pareto_latency ? "1" : "0");
    cells.push_back(m.pareto_size ? "1" : "0");
    if (m.vs_baseline) {
      const auto& b = *m.vs_baseline;
      auto delta = [&b](const std::string& k) {
        auto it = b.deltas.find(k);
        return it == b.deltas.end() ? std::string() : number(it->second);
      };
      cells.push_back(b.baseline);
      cells.push_back(number(b.agreement));
      for (const char* k : {"top1", "macro_f1", "latency_p50_ms", "file_bytes"})
        cells.push_back(delta(k));
    } else {
      cells.insert(cells.end(), 6, "");
    }
    row(cells);
  }
  return out;
}

}  // namespace vitopt::report
