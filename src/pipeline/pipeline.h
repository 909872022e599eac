// Runs a recipe end to end into one run folder: train (resuming an interrupted run), evaluate the
// final and best models on the test split, and write summary.json / summary.md. Later stages
// (evaluator reports, quantization, pruning, distillation) plug in here.
#pragma once

#include <nlohmann/json.hpp>

#include "pipeline/recipe.h"

namespace vitopt::pipeline {

struct PipelineOptions {
  bool quiet = false;
};

// Returns the summary (also written to <out>/summary.json).
nlohmann::json run_pipeline(const Recipe& recipe, const PipelineOptions& options);

}  // namespace vitopt::pipeline
