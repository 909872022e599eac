// The metrics.json schema as C++ structs (version 1; docs/metrics.md documents every field). The
// evaluator fills these, the report writers read only these, and scripts read the JSON: one
// definition, round-tripped exactly (to_json(from_json(j)) == j). Undefined values are
// std::optional (JSON null), never NaN. No computation here.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vitopt::report {

inline constexpr int kMetricsSchemaVersion = 2;  // 2: latency rounds/spread, energy domains
inline constexpr const char* kMetricsSchemaName = "vitopt.metrics";

struct ClassStats {
  int index = 0;
  std::string name;
  int64_t support = 0;    // images of this class
  int64_t predicted = 0;  // images predicted as this class
  int64_t correct = 0;
  std::optional<double> accuracy;            // correct / support (null without support)
  double precision = 0, recall = 0, f1 = 0;  // 0 when undefined (see docs/metrics.md)
  bool operator==(const ClassStats&) const = default;
};

struct Classification {
  int64_t images = 0;
  double top1 = 0, top3 = 0, top5 = 0;  // fractions in [0, 1]
  double loss = 0;                      // mean cross-entropy (nats)
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  int macro_classes = 0;  // classes averaged over (present in labels or predictions)
  std::vector<ClassStats> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<int> never_predicted;             // classes with support that were never predicted
  bool operator==(const Classification&) const = default;
};

struct ReliabilityBin {
  double lo = 0, hi = 0;  // confidence interval (lo, hi]; the first bin also takes 0
  int64_t count = 0;
  std::optional<double> mean_confidence, accuracy;  // null for an empty bin
  bool operator==(const ReliabilityBin&) const = default;
};

struct Confidence {
  double mean_max_prob = 0;
  std::optional<double> mean_max_prob_correct, mean_max_prob_incorrect, gap;  // gap = c - i
  double mean_entropy = 0;  // predictive entropy in nats
  double ece = 0;           // expected calibration error over `reliability`
  int ece_bins = 15;
  std::vector<ReliabilityBin> reliability;
  int histogram_bins = 20;  // max-probability histograms over [0, 1]
  std::vector<int64_t> histogram_correct, histogram_incorrect;
  bool operator==(const Confidence&) const = default;
};

struct Latency {
  int64_t batch = 1;
  int warmup = 0, runs = 0;  // runs: timed runs in all rounds together
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  // Interleaved rounds (eval/latency.h): the p50 of each round and their interquartile
  // range. Two models whose p50s differ by less than their spreads together are a tie.
  int rounds = 1;
  std::vector<double> round_p50_ms;
  double p50_spread_ms = 0;
  bool operator==(const Latency&) const = default;
};

struct Throughput {
  int64_t batch = 0;
  int runs = 0;
  double images_per_s = 0;
  double ms_per_batch = 0;  // median
  bool operator==(const Throughput&) const = default;
};

struct Memory {
  std::optional<int64_t> peak_rss_bytes;  // VmHWM after this model's inference
  bool rss_reset = false;                 // high-water mark was reset before this model
  std::string rss_note;
  std::optional<int64_t> allocator_peak_bytes;  // LibTorch allocator's figure, if it has one
  std::string allocator_note;
  bool operator==(const Memory&) const = default;
};

struct Energy {
  bool available = false;
  std::optional<double> joules_per_image;       // package domains (cores + uncore of the socket)
  std::optional<double> dram_joules_per_image;  // the DRAM domain, where the CPU exposes one
  std::string includes;  // what the figure covers, e.g. "package-0 (+ dram reported apart)"
  std::string source;    // e.g. "RAPL /sys/class/powercap/intel-rapl:0", or why unavailable
  bool operator==(const Energy&) const = default;
};

struct Efficiency {
  int64_t params = 0;
  std::vector<int64_t> params_per_block;  // 0 for a block that shares another's weights
  int64_t params_other = 0;               // embeddings, final norm, heads
  std::optional<int64_t> nonzero_params;  // when the engine exposes the weights
  int64_t macs = 0, flops = 0;            // per image; flops = 2 * macs
  int64_t file_bytes = 0;
  Latency latency;
  Throughput throughput;
  Memory memory;
  Energy energy;
  double efficiency_score = 0;  // top1 (percent) / latency p50 (ms)
  bool operator==(const Efficiency&) const = default;
};

struct BaselineComparison {
  std::string baseline;                  // label of the baseline model
  std::map<std::string, double> deltas;  // "<metric>": model - baseline (docs/metrics.md)
  std::vector<std::optional<double>> per_class_accuracy_delta;  // null: class absent
  double agreement = 0;  // fraction of images with the same top-1 prediction
  int64_t both_correct = 0, only_baseline_correct = 0, only_model_correct = 0, both_wrong = 0;
  bool operator==(const BaselineComparison&) const = default;
};

struct ModelMetrics {
  std::string label;  // unique display name, used as the id everywhere in the report
  std::string path;
  std::string precision;  // io::precision_label: "fp32", "int8", "int6", "mixed", ...
  std::string engine;
  nlohmann::json config;  // the model's ViTConfig JSON
  bool is_baseline = false;
  Classification classification;
  Confidence confidence;
  Efficiency efficiency;
  std::optional<BaselineComparison> vs_baseline;
  bool pareto_latency = false, pareto_size = false;  // on the accuracy-latency / -size front
  bool operator==(const ModelMetrics&) const = default;
};

struct DataInfo {
  std::string spec, split, description;
  int64_t images = 0;
  int num_classes = 0;
  std::vector<std::string> class_names;
  bool operator==(const DataInfo&) const = default;
};

struct Settings {
  std::string engine, device;
  int threads = 0;
  int64_t batch_size = 0;
  int latency_runs = 0;
  int64_t throughput_batch = 0;
  int latency_rounds = 1;  // latency_runs are split into this many interleaved rounds
  bool operator==(const Settings&) const = default;
};

struct Recommendation {
  std::optional<double> latency_budget_ms, size_budget_mb;
  std::optional<std::string> under_latency_budget, under_size_budget;  // null: none fits/no budget
  std::string most_accurate, fastest, smallest, best_efficiency;
  // Models whose p50 ties with the fastest one's within the spreads (fastest included).
  std::vector<std::string> tied_fastest;
  bool operator==(const Recommendation&) const = default;
};

struct MetricsReport {
  int schema_version = kMetricsSchemaVersion;
  std::string title, created;  // created: UTC ISO 8601
  DataInfo data;
  Settings settings;
  std::map<std::string, std::string> environment;  // cpu, blas, threads, ...
  std::optional<std::string> baseline;             // label of the baseline model
  std::string baseline_source;                     // "flag", "first model", or "" without one
  std::vector<ModelMetrics> models;
  std::vector<std::string> pareto_latency, pareto_size;  // labels on each front, by cost
  Recommendation recommendation;
  std::map<std::string, std::string> plots;  // plot name -> path relative to the report folder
  bool operator==(const MetricsReport&) const = default;

  const ModelMetrics* find(const std::string& label) const;
};

nlohmann::json to_json(const MetricsReport& report);
// Strict: every field must be present with the right type; throws core::InputError naming
// `source` and the field otherwise.
MetricsReport metrics_from_json(const nlohmann::json& j,
                                const std::string& source = "metrics.json");

}  // namespace vitopt::report
