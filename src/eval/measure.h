// Measuring one model file: the data pass (logits for every image), batch-1 latency, throughput,
// peak memory and energy, then the per-model metrics. The evaluator (evaluator.cpp) runs this for
// every model and adds what needs several models (baseline deltas, Pareto, recommendation).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "eval/efficiency.h"
#include "eval/evaluator.h"
#include "report/metrics_schema.h"

namespace vitopt::eval {

struct MeasuredModel {
  report::ModelMetrics metrics;
  std::vector<int64_t> predictions;  // (n) top-1 class per image, in dataset order
  std::vector<int64_t> labels;       // (n)
  report::DataInfo data;             // what was evaluated (same for every model of a request)
};

MeasuredModel measure_model(const std::filesystem::path& file, const std::string& label,
                            const EvalRequest& request, int threads, EnergyMeter& energy);

}  // namespace vitopt::eval
