// JSON (de)serialization of the metrics.json structs. Field names are the C++ member names; an
// optional is JSON null when empty. Strict on read so a script's typo or an old file fails loudly.
#include "report/metrics_schema.h"

#include "core/error.h"

namespace nlohmann {
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& v) {
    if (v)
      j = *v;
    else
      j = nullptr;
  }
  static void from_json(const json& j, std::optional<T>& v) {
    if (j.is_null())
      v.reset();
    else
      v = j.get<T>();
  }
};
}  // namespace nlohmann

namespace vitopt::report {

// Defined only in this file (inline, found by ADL from nlohmann's get/assign).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ClassStats, index, name, support, predicted, correct, accuracy,
                                   precision, recall, f1)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Classification, images, top1, top3, top5, loss, macro_precision,
                                   macro_recall, macro_f1, macro_classes, per_class, confusion,
                                   never_predicted)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReliabilityBin, lo, hi, count, mean_confidence, accuracy)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Confidence, mean_max_prob, mean_max_prob_correct,
                                   mean_max_prob_incorrect, gap, mean_entropy, ece, ece_bins,
                                   reliability, histogram_bins, histogram_correct,
                                   histogram_incorrect)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Latency, batch, warmup, runs, p50_ms, p90_ms, p99_ms, mean_ms,
                                   min_ms, max_ms, rounds, round_p50_ms, p50_spread_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Throughput, batch, runs, images_per_s, ms_per_batch)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Memory, peak_rss_bytes, rss_reset, rss_note,
                                   allocator_peak_bytes, allocator_note)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Energy, available, joules_per_image, dram_joules_per_image,
                                   includes, source)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Efficiency, params, params_per_block, params_other,
                                   nonzero_params, macs, flops, file_bytes, latency, throughput,
                                   memory, energy, efficiency_score)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BaselineComparison, baseline, deltas, per_class_accuracy_delta,
                                   agreement, both_correct, only_baseline_correct,
                                   only_model_correct, both_wrong)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ModelMetrics, label, path, precision, engine, config,
                                   is_baseline, classification, confidence, efficiency, vs_baseline,
                                   pareto_latency, pareto_size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DataInfo, spec, split, description, images, num_classes,
                                   class_names)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, engine, device, threads, batch_size, latency_runs,
                                   throughput_batch, latency_rounds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Recommendation, latency_budget_ms, size_budget_mb,
                                   under_latency_budget, under_size_budget, most_accurate, fastest,
                                   smallest, best_efficiency, tied_fastest)

const ModelMetrics* MetricsReport::find(const std::string& label) const {
  for (const auto& m : models)
    if (m.label == label) return &m;
  return nullptr;
}

nlohmann::json to_json(const MetricsReport& r) {
  nlohmann::json j;
  j["schema"] = kMetricsSchemaName;
  j["schema_version"] = r.schema_version;
  j["title"] = r.title;
  j["created"] = r.created;
  j["data"] = r.data;
  j["settings"] = r.settings;
  j["environment"] = r.environment;
  j["baseline"] = r.baseline;
  j["baseline_source"] = r.baseline_source;
  j["models"] = r.models;
  j["pareto_latency"] = r.pareto_latency;
  j["pareto_size"] = r.pareto_size;
  j["recommendation"] = r.recommendation;
  j["plots"] = r.plots;
  return j;
}

MetricsReport metrics_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) core::throw_input("{}: expected a JSON object at the top level", source);
  const auto schema = j.value("schema", std::string());
  if (schema != kMetricsSchemaName)
    core::throw_bad_field(source, "schema", std::string("\"") + kMetricsSchemaName + "\"",
                          "\"" + schema + "\"");
  MetricsReport r;
  // Each part separately, so an error names where it happened.
  auto part = [&](const char* key, auto& out) {
    try {
      j.at(key).get_to(out);
    } catch (const nlohmann::json::exception& e) {
      core::throw_input("{}: field '{}': {}", source, key, e.what());
    }
  };
  part("schema_version", r.schema_version);
  if (r.schema_version != kMetricsSchemaVersion)
    core::throw_bad_field(source, "schema_version", std::to_string(kMetricsSchemaVersion),
                          std::to_string(r.schema_version));
  part("title", r.title);
  part("created", r.created);
  part("data", r.data);
  part("settings", r.settings);
  part("environment", r.environment);
  part("baseline", r.baseline);
  part("baseline_source", r.baseline_source);
  if (!j.contains("models") || !j["models"].is_array())
    core::throw_bad_field(source, "models", "an array",
                          j.contains("models") ? "another type" : "nothing");
  for (size_t i = 0; i < j["models"].size(); ++i) {
    try {
      r.models.push_back(j["models"][i].get<ModelMetrics>());
    } catch (const nlohmann::json::exception& e) {
      core::throw_input("{}: field 'models[{}]': {}", source, i, e.what());
    }
  }
  part("pareto_latency", r.pareto_latency);
  part("pareto_size", r.pareto_size);
  part("recommendation", r.recommendation);
  part("plots", r.plots);
  return r;
}

}  // namespace vitopt::report
