// The pipeline's compression stages: every quantize / prune / distill entry of a recipe applied to
// the trained baseline model, each producing one model file under the run folder. A stage whose
// output already exists is reused when the recipe allows resuming (interrupted runs continue).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/recipe.h"

namespace vitopt::pipeline {

struct StageOutput {
  std::string stage;              // "quantize", "prune" or "distill"
  std::string name;               // the recipe entry's name
  std::filesystem::path model;    // the model file it produced
  nlohmann::json result;          // what the stage's job returned (or its saved JSON)
  bool reused = false;            // true when an earlier run's output was taken as is
};

std::vector<StageOutput> run_compress_stages(const Recipe& recipe,
                                             const std::filesystem::path& baseline, bool quiet);

}  // namespace vitopt::pipeline
