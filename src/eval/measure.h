// Measuring one model file: the data pass (logits for every image), throughput, peak memory and
// energy, then the per-model metrics. The evaluator (evaluator.cpp) runs this for every model and
// adds what needs several models: batch-1 latency (all models in the same interleaved rounds),
// baseline deltas, Pareto fronts, recommendation.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "eval/efficiency.h"
#include "eval/engine.h"
#include "eval/evaluator.h"
#include "report/metrics_schema.h"

namespace vitopt::eval {

struct MeasuredModel {
  report::ModelMetrics metrics;
  std::vector<int64_t> predictions;  // (n) top-1 class per image, in dataset order
  std::vector<int64_t> labels;       // (n)
  report::DataInfo data;             // what was evaluated (same for every model of a request)
  std::vector<float> latency_image;  // (1, C, H, W) a real preprocessed test image for batch-1 timing
};

EngineOptions engine_options(const EvalRequest& request, int threads);

// Everything but batch-1 latency, which the evaluator times for all models together in
// interleaved rounds (latency.h); efficiency_score is filled in then too.
MeasuredModel measure_model(const std::filesystem::path& file, const std::string& label,
                            const EvalRequest& request, int threads, EnergyMeter& energy);

}  // namespace vitopt::eval
