// Runs a recipe into one run folder: the stages in dependency order (train, compression stages
// that start `from:` the baseline, another stage or a model file, then the evaluation with its
// report), under a lock on the folder, redoing on resume only the stages whose fingerprint
// changed. --mode and --only choose which stages run; the others' earlier outputs are used.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/recipe.h"
#include "pipeline/stage_plan.h"

namespace vitopt::pipeline {

struct PipelineOptions {
  bool quiet = false;
  Mode mode = Mode::kAll;
  std::vector<std::string> only;  // stage ids, kinds or names (empty: every stage of the mode)
};

// Returns the summary (also written to <out>/summary.json).
nlohmann::json run_pipeline(const Recipe& recipe, const PipelineOptions& options);

}  // namespace vitopt::pipeline
